"""Host memory per idle sandbox.

Creates N idle sandboxes (`CORRAL_BENCH_N`, default 50) and reports, per sandbox:

* the drop of `MemAvailable` (/proc/meminfo) between before and after (noisy: the host is
  shared; kernel memory such as namespaces and page tables is included);
* the sandbox cgroup's memory usage (v1 `memory.usage_in_bytes`, v2 `memory.current`);
* the PSS (`/proc/<pid>/smaps_rollup`) of the processes inside each sandbox (the agent);
* the growth of the server's own PSS.

Baseline in the same run: the `MemAvailable` drop for N idle
`unshare --fork --pid --mount --net --uts --ipc --user sleep` processes.

    /work/main/.venv/bin/python bench/idle_memory.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import _harness as harness

MIB = 1024 * 1024


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def settled_mem_available() -> int:
    """Median of a few readings, after dropping nothing: we only let things settle."""
    time.sleep(1.0)
    readings = []
    for _ in range(5):
        readings.append(mem_available())
        time.sleep(0.1)
    return sorted(readings)[len(readings) // 2]


def pss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_pss(root: int) -> int:
    return pss(root) + sum(pss(pid) for pid in harness.live_descendants(root))


def cgroup_memory(sandbox_id: str) -> int | None:
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
        procs = cgroup / "cgroup.procs"
        try:
            pids = [int(p) for p in procs.read_text().split()]
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


def unshare_baseline(n: int) -> float | None:
    """MiB of MemAvailable per idle process in a fresh set of namespaces."""
    if not shutil.which("unshare"):
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
    return (before - after) / n / MIB


def main() -> int:
    n = harness.bench_n(50)
    harness.become_subreaper()
    server = harness.CorralServer()
    server.start()
    ids: list[str] = []
    sandboxes = []
    try:
        with harness.environ(harness.sdk_env(server)):
            from e2b import Sandbox

            warm = Sandbox.create(timeout=120)  # first-use costs (imports, caches) not counted
            ids.append(warm.sandbox_id)
            warm.kill()
            assert server.process is not None
            server_before = tree_pss(server.process.pid)
            before = settled_mem_available()
            try:
                for _ in range(n):
                    sbx = Sandbox.create(timeout=600)
                    ids.append(sbx.sandbox_id)
                    sandboxes.append(sbx)
                after = settled_mem_available()
                cgroup_values = [cgroup_memory(s.sandbox_id) for s in sandboxes]
                agent_pss = [
                    sum(pss(pid) for pid in sandbox_pids(s.sandbox_id, server.run_dir))
                    for s in sandboxes
                ]
                server_after = tree_pss(server.process.pid)
            finally:
                for sbx in sandboxes:
                    sbx.kill()
    finally:
        server.stop()
    print(f"runtime={server.runtime} idle sandboxes={n}")
    print(f"MemAvailable drop per sandbox: {(before - after) / n / MIB:.2f} MiB")
    known = [value for value in cgroup_values if value is not None]
    if known:
        print(
            f"cgroup memory usage per sandbox: {sum(known) / len(known) / MIB:.2f} MiB "
            f"(mean of {len(known)} cgroups)"
        )
    else:
        print("cgroup memory usage per sandbox: n/a (no sandbox memory cgroups)")
    print(f"PSS of in-sandbox processes per sandbox: {sum(agent_pss) / n / MIB:.2f} MiB")
    print(
        f"server + launcher + sandboxes PSS growth per sandbox: "
        f"{(server_after - server_before) / n / MIB:.2f} MiB"
    )
    baseline = unshare_baseline(n)
    if baseline is not None:
        print(f"baseline MemAvailable drop per idle unshare'd process: {baseline:.2f} MiB")
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
