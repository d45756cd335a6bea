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

    /work/main/.venv/bin/python bench/network.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

import _harness as harness

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "network"))
from fake_internet import DNS, SINK_PORT, UDP_ECHO_PORT, WEB, FakeInternet  # noqa: E402

__all__ = ["measure_creates", "measure_policy_update", "measure_throughput"]

API_KEY = "e2b_corral_bench"
HEADERS = {"X-API-KEY": API_KEY}
SPACING_S = 0.2

_SENDER = f"""
import socket, time
chunk = b"\\0" * (1 << 20)
total = 2048 * len(chunk)
s = socket.create_connection(("{WEB}", {SINK_PORT}))
start = time.perf_counter()
for _ in range(2048):
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


def measure_creates(server: harness.CorralServer, n: int, pause: float) -> list[float]:
    """Create latencies; `pause` seconds after each (untimed) delete."""
    samples = []
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as client:
        for i in range(n + 3):
            start = time.perf_counter()
            answer = client.post("/v2/sandboxes", json={"templateID": "base", "timeout": 60})
            elapsed = time.perf_counter() - start
            answer.raise_for_status()
            client.delete(f"/sandboxes/{answer.json()['sandboxID']}")
            time.sleep(pause)
            if i >= 3:  # warm-up
                samples.append(elapsed)
    return samples


def measure_throughput(server: harness.CorralServer) -> float:
    """Best Gbit/s of 3 runs."""
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=300, allow_internet_access=True)
        try:
            runs = [
                float(sbx.commands.run(f"python3 -c '{_SENDER}'", timeout=120).stdout)
                for _ in range(3)
            ]
        finally:
            sbx.kill()
    return max(runs)


def measure_policy_update(server: harness.CorralServer, n: int) -> tuple[list[float], list[float]]:
    """(PUT latencies, PUT-to-first-echo latencies) in seconds."""
    puts, flips = [], []
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=300, allow_internet_access=False)
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


def main() -> None:
    n = harness.bench_n(100)
    inet = FakeInternet()
    on = harness.CorralServer(
        runtime="namespaces", extra_args=["--uplink-netns", inet.path, "--dns-upstream", DNS]
    )
    off = harness.CorralServer(runtime="namespaces", extra_args=["--network", "off"])
    try:
        with on, off:
            for label, pause in (("back-to-back", 0.0), (f"{SPACING_S}s apart", SPACING_S)):
                off_samples = measure_creates(off, n, pause)
                on_samples = measure_creates(on, n, pause)
                print(harness.format_latencies(f"create {label}, --network off", off_samples))
                print(harness.format_latencies(f"create {label}, network on   ", on_samples))
                delta = harness.percentiles(on_samples)[50] - harness.percentiles(off_samples)[50]
                print(f"network adds to a create {label} (p50 difference): {delta * 1e3:.2f} ms")
            print(f"throughput sandbox -> test host: {measure_throughput(on):.2f} Gbit/s")
            puts, flips = measure_policy_update(on, 20)
            print(harness.format_latencies("policy update: PUT -> 204", puts))
            print(harness.format_latencies("policy update: PUT -> first packet through", flips))
    finally:
        on.remove_workdir()
        off.remove_workdir()
        inet.close()


if __name__ == "__main__":
    main()
