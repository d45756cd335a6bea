"""Sandbox networking: create cost, throughput to a test host, policy update latency.

Builds the tests' fake internet (`tests/network/fake_internet.py`: a network namespace with
servers) and measures, against `corral serve --uplink-netns <it>`:

1. create latency (`POST /v2/sandboxes`, 201 received; the sandbox is deleted after each
   sample, untimed) with networking on, and on a second server with `--network off`;
   the p50 difference is what networking adds to a create. Twice: creates right after the
   previous kill (the kernel is still tearing the dead sandbox's namespace and veth down,
   under the RTNL lock the next create's veth needs), and 0.2 s apart (steady state).
   N = `CORRAL_BENCH_N` (100) each.
2. throughput sandbox -> test host over an allowed path (no proxy): python3 in the sandbox
   sends 2 GiB over one TCP connection to a sink that answers the byte count; best of 3.
3. policy update latency: a sandbox without internet access runs a prober (UDP echo to an
   allowed-to-be host every ~1 ms); `PUT /sandboxes/{id}/network` allows the host; timed
   from before the PUT to the prober's first echo (both clocks are the host's), and the
   PUT's own 204 latency. 20 samples.

`measure(...)` does all three with given counts and returns a `Network` record (the suite's
step, runtime `namespaces` only); run alone this prints the figures:

    /work/main/.venv/bin/python bench/network.py
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import _harness as harness
from _results import Latencies

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "network"))
from fake_internet import DNS, SINK_PORT, UDP_ECHO_PORT, WEB, FakeInternet  # noqa: E402

__all__ = [
    "SPACING_S",
    "Network",
    "measure",
    "measure_creates",
    "measure_policy_update",
    "measure_throughput",
]

API_KEY = "e2b_corral_bench"
HEADERS = {"X-API-KEY": API_KEY}
SPACING_S = 0.2

_SENDER = f"""
import socket, time
chunk = b"\\0" * (1 << 20)
total = {{mib}} * len(chunk)
s = socket.create_connection(("{WEB}", {SINK_PORT}))
start = time.perf_counter()
for _ in range({{mib}}):
    s.sendall(chunk)
s.shutdown(socket.SHUT_WR)
got = int(s.recv(64))
elapsed = time.perf_counter() - start
assert got == total, got
print(total * 8 / elapsed / 1e9)
"""

_PROBER = f"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.001)
deadline = time.time() + 10
while time.time() < deadline:
    s.sendto(b"x", ("{WEB}", {UDP_ECHO_PORT}))
    try:
        s.recv(10)
        print(repr(time.time()))
        break
    except OSError:
        pass
"""


def measure_creates(
    server: harness.CorralServer, n: int, pause: float, ids: list[str] | None = None
) -> list[float]:
    """Create latencies; `pause` seconds after each (untimed) delete; ids go to `ids`."""
    samples = []
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as client:
        for i in range(n + 3):
            start = time.perf_counter()
            answer = client.post("/v2/sandboxes", json={"templateID": "base", "timeout": 60})
            elapsed = time.perf_counter() - start
            answer.raise_for_status()
            sandbox_id = answer.json()["sandboxID"]
            if ids is not None:
                ids.append(sandbox_id)
            client.delete(f"/sandboxes/{sandbox_id}").raise_for_status()
            time.sleep(pause)
            if i >= 3:  # warm-up
                samples.append(elapsed)
    return samples


def measure_throughput(
    server: harness.CorralServer, runs: int = 3, mib: int = 2048, ids: list[str] | None = None
) -> float:
    """Best Gbit/s of `runs` runs of `mib` MiB each."""
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=300, allow_internet_access=True)
        if ids is not None:
            ids.append(sbx.sandbox_id)
        sender = _SENDER.replace("{mib}", str(mib))
        try:
            rates = [
                float(sbx.commands.run(f"python3 -c '{sender}'", timeout=120).stdout)
                for _ in range(runs)
            ]
        finally:
            sbx.kill()
    return max(rates)


def measure_policy_update(
    server: harness.CorralServer, n: int, ids: list[str] | None = None
) -> tuple[list[float], list[float]]:
    """(PUT latencies, PUT-to-first-echo latencies) in seconds."""
    puts, flips = [], []
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=300, allow_internet_access=False)
        if ids is not None:
            ids.append(sbx.sandbox_id)
        url = f"{server.url}/sandboxes/{sbx.sandbox_id}/network"
        try:
            with httpx.Client(headers=HEADERS, timeout=30) as client:
                for _ in range(n):
                    client.put(url, json={"allow_internet_access": False}).raise_for_status()
                    prober = sbx.commands.run(f"python3 -c '{_PROBER}'", background=True)
                    time.sleep(0.3)  # the prober is running and failing
                    start_wall, start = time.time(), time.perf_counter()
                    client.put(url, json={"allowOut": [WEB]}).raise_for_status()
                    puts.append(time.perf_counter() - start)
                    echoed = prober.wait().stdout.strip()
                    flips.append(float(echoed) - start_wall)
        finally:
            sbx.kill()
    return puts, flips


@dataclass
class Network:
    """The network step: latency series, figures (name → value) and what the servers left."""

    series: list[Latencies] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    leaks: list[str] = field(default_factory=list)


def _series(name: str, samples: list[float], note: str = "") -> Latencies:
    return Latencies(name, samples=samples, attempts=len(samples), note=note)


def measure(
    creates: int, policy_updates: int, throughput_runs: int, throughput_mib: int = 2048
) -> Network:
    """All three measurements on two fresh servers (network on, behind the fake internet, and
    `--network off`); stops them and checks what they left (`Network.leaks`)."""
    result = Network()
    ids: list[str] = []
    inet = FakeInternet()
    on = harness.CorralServer(
        runtime="namespaces", extra_args=["--uplink-netns", inet.path, "--dns-upstream", DNS]
    )
    off = harness.CorralServer(runtime="namespaces", extra_args=["--network", "off"])
    try:
        with on, off:
            for label, pause in (("back-to-back", 0.0), (f"{SPACING_S}s apart", SPACING_S)):
                off_samples = measure_creates(off, creates, pause, ids)
                on_samples = measure_creates(on, creates, pause, ids)
                result.series.append(_series(f"create {label}, --network off", off_samples))
                result.series.append(_series(f"create {label}, network on", on_samples))
                delta = harness.percentiles(on_samples)[50] - harness.percentiles(off_samples)[50]
                result.figures[f"network adds to a create, {label} (p50 difference), ms"] = (
                    delta * 1e3
                )
            gbits = measure_throughput(on, throughput_runs, throughput_mib, ids)
            name = f"throughput sandbox → test host, best of {throughput_runs} × "
            result.figures[name + f"{throughput_mib} MiB, Gbit/s"] = gbits
            puts, flips = measure_policy_update(on, policy_updates, ids)
            result.series.append(_series("policy update: PUT → 204", puts))
            result.series.append(_series("policy update: PUT → first packet through", flips))
    finally:
        inet.close()
        for server in (on, off):
            leaks = harness.wait_no_leaks(ids, [server.state_dir, server.run_dir])
            result.leaks += leaks
            if not leaks:
                server.remove_workdir()
    return result


def main() -> int:
    n = harness.bench_n(100)
    harness.become_subreaper()
    result = measure(n, 20, 3)
    for series in result.series:
        print(series.line())
    for name, value in result.figures.items():
        print(f"{name}: {value:.2f}")
    leaks = result.leaks + harness.describe_pids(harness.live_descendants(os.getpid()))
    if leaks:
        print("LEAKS:\n  " + "\n  ".join(leaks), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
