"""Density: idle sandboxes held until a create fails or the cap (`--cap`, default 500).

Each sandbox is made with `Sandbox.create()` through the official SDK and left idle; the
latency of every create is kept in order, so sample i was taken with i sandboxes held
("create latency at density"). It stops early when a create fails or when the host's
`MemAvailable` falls under 10 % of `MemTotal` (the machine may be shared). Then it reports:

* host memory per idle sandbox: the drop of `MemAvailable` (/proc/meminfo) from before the
  first create to all held (noisy on a shared host; includes kernel memory such as
  namespaces and page tables);
* the sandbox cgroups' memory usage (v1 `memory.usage_in_bytes`, v2 `memory.current`);
* the PSS (`/proc/<pid>/smaps_rollup`) of the processes inside the sandboxes (the agents),
  and the growth of the server's own PSS (server + launcher);
* whether held sandboxes still answer (a few are probed with `commands.run("true")`);
* memory cgroups before and after (from `/proc/cgroups`, which counts dying ones too, and
  the directories that still exist: the difference is the dying memcgs);
* baseline in the same run: `MemAvailable` drop per idle `unshare … sleep` process.

    /work/main/.venv/bin/python bench/density.py [--cap 500]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _harness as harness
from _results import Density, Latencies

__all__ = [
    "MIB",
    "cgroup_memory",
    "measure",
    "memcg_counts",
    "print_memory",
    "pss",
    "sandbox_pids",
    "settled_mem_available",
    "unshare_baseline",
]

MIB = 1024 * 1024
LOW_MEMORY_FRACTION = 0.10
PROBES = 5


def _meminfo(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/meminfo")


def settled_mem_available() -> int:
    """Median of a few `MemAvailable` readings after a short pause (nothing is dropped)."""
    time.sleep(1.0)
    readings = []
    for _ in range(5):
        readings.append(_meminfo("MemAvailable"))
        time.sleep(0.1)
    return sorted(readings)[len(readings) // 2]


def pss(pid: int) -> int:
    """Proportional set size of one process in bytes (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _tree_pss(root: int) -> int:
    return pss(root) + sum(pss(pid) for pid in harness.live_descendants(root))


def cgroup_memory(sandbox_id: str) -> int | None:
    """Memory usage of a sandbox's memory cgroup (v1 or v2), None if unreadable."""
    v1 = harness.CGROUP_ROOT / "memory" / "corral" / sandbox_id / "memory.usage_in_bytes"
    v2 = harness.CGROUP_ROOT / "corral" / sandbox_id / "memory.current"
    for path in (v1, v2):
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            continue
    return None


def sandbox_pids(sandbox_id: str, run_dir: Path) -> list[int]:
    """Processes of one sandbox: its cgroup's members, else processes naming its run dir."""
    for cgroup in harness.cgroup_dirs(sandbox_id):
        try:
            pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
        except OSError:
            continue
        if pids:
            return pids
    needle = str(run_dir / "sandboxes" / sandbox_id)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                found.append(int(entry.name))
    return found


def memcg_counts() -> dict[str, int]:
    """Memory cgroups: the `/proc/cgroups` count (dying ones included), the directories that
    exist (live), and the difference (dying: removed but still pinned by charged pages)."""
    counted = -1
    for line in Path("/proc/cgroups").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "memory":
            counted = int(fields[2])
    root = harness.CGROUP_ROOT / "memory"
    if not root.is_dir():  # pure v2: /proc/cgroups says nothing useful, cgroup.stat does
        stat = dict(
            line.split()
            for line in (harness.CGROUP_ROOT / "cgroup.stat").read_text().splitlines()
            if line.strip()
        )
        live = int(stat.get("nr_descendants", 0)) + 1
        return {
            "proc_cgroups": counted,
            "live_dirs": live,
            "dying": int(stat.get("nr_dying_descendants", 0)),
        }
    live = sum(len(dirs) for _, dirs, _ in os.walk(root)) + 1
    return {"proc_cgroups": counted, "live_dirs": live, "dying": max(0, counted - live)}


def unshare_baseline(n: int) -> float | None:
    """Bytes of MemAvailable per idle process in a fresh set of namespaces."""
    if not shutil.which("unshare") or n <= 0:
        return None
    # --kill-child: the namespaced `sleep` dies with `unshare` (it is its pid 1)
    argv = [*harness.UNSHARE_ALL, "--kill-child", "sleep", "600"]
    before = settled_mem_available()
    procs = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(n)
    ]
    try:
        after = settled_mem_available()
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
    return (before - after) / n


def measure(
    server: harness.CorralServer, cap: int, ids: list[str], *, baseline_count: int = 0
) -> Density:
    """Hold up to `cap` idle sandboxes, measure, kill them all; ids go to `ids`."""
    assert server.process is not None
    floor = _meminfo("MemTotal") * LOW_MEMORY_FRACTION
    held: list[Any] = []
    create = Latencies(f"create at density (up to {cap} held)")
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        warm = Sandbox.create(timeout=120)  # first-use costs (imports, caches) not counted
        ids.append(warm.sandbox_id)
        warm.kill()
        memcg_before = memcg_counts()
        server_before = _tree_pss(server.process.pid)
        before = settled_mem_available()
        stop_reason = f"cap of {cap} reached"
        try:
            while len(held) < cap:
                if _meminfo("MemAvailable") < floor:
                    stop_reason = "host MemAvailable under 10% of MemTotal"
                    break
                create.attempts += 1
                start = time.perf_counter()
                try:
                    sbx = Sandbox.create(timeout=3600)
                except Exception as exc:
                    create.record_error(exc)
                    stop_reason = f"create #{len(held) + 1} failed: {create.errors[-1]}"
                    break
                create.samples.append(time.perf_counter() - start)
                ids.append(sbx.sandbox_id)
                held.append(sbx)
            after = settled_mem_available()
            cgroup_values = [cgroup_memory(s.sandbox_id) for s in held]
            sandbox_pss = sum(
                pss(pid) for s in held for pid in sandbox_pids(s.sandbox_id, server.run_dir)
            )
            server_after = _tree_pss(server.process.pid)
            probes = held[:: max(1, len(held) // PROBES)][:PROBES] + held[-1:]
            answered = 0
            for sbx in probes:
                try:
                    sbx.commands.run("true")
                    answered += 1
                except Exception:
                    pass
        finally:
            kill_start = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda sbx: sbx.kill(), held))
            kill_seconds = time.perf_counter() - kill_start
    time.sleep(1.0)
    n = len(held)
    result = Density(
        cap=cap,
        held=n,
        stop_reason=stop_reason,
        create=create,
        mem_available_drop=before - after,
        cgroup_memory=[value for value in cgroup_values if value is not None],
        sandbox_pss=sandbox_pss,
        server_pss_growth=server_after - server_before,
        alive_after=f"{answered}/{len(probes)}",
        memcg_before=memcg_before,
        memcg_after=memcg_counts(),
        kill_seconds=kill_seconds,
    )
    if baseline_count:
        result.unshare_baseline_per_process = unshare_baseline(baseline_count)
        result.unshare_baseline_count = baseline_count
    return result


def print_memory(result: Density) -> None:
    """The per-sandbox memory lines (shared with `idle_memory.py`)."""
    n = max(1, result.held)
    print(f"MemAvailable drop per sandbox: {result.mem_available_drop / n / MIB:.2f} MiB")
    known = result.cgroup_memory
    if known:
        print(
            f"cgroup memory usage per sandbox: {sum(known) / len(known) / MIB:.2f} MiB "
            f"(mean of {len(known)} cgroups)"
        )
    else:
        print("cgroup memory usage per sandbox: n/a (no sandbox memory cgroups)")
    print(f"PSS of in-sandbox processes per sandbox: {result.sandbox_pss / n / MIB:.2f} MiB")
    print(
        "server + launcher + sandboxes PSS growth per sandbox: "
        f"{result.server_pss_growth / n / MIB:.2f} MiB"
    )
    if result.unshare_baseline_per_process is not None:
        print(
            "baseline MemAvailable drop per idle unshare'd process: "
            f"{result.unshare_baseline_per_process / MIB:.2f} MiB"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=harness.bench_n(500))
    args = parser.parse_args()
    with harness.benchmark_server() as (server, ids):
        result = measure(server, args.cap, ids, baseline_count=min(args.cap, 100))
    print(f"runtime={server.runtime} idle sandboxes held={result.held} ({result.stop_reason})")
    print(result.create.line())
    for label, lo, hi in (("first tenth", 0, 0.1), ("last tenth", 0.9, 1.0)):
        part = result.create.samples[int(lo * result.held) : max(1, int(hi * result.held))]
        if part:
            print(harness.format_latencies(f"create latency, {label} of the ramp", part))
    print_memory(result)
    print(f"held sandboxes still answering: {result.alive_after}")
    print(f"memory cgroups before: {result.memcg_before} after: {result.memcg_after}")
    print(f"kill of all held: {result.kill_seconds:.2f}s")
    if result.create.failures:
        print(f"server log tail:\n{server.log_tail(30)}")
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
