"""cgroup limits hold for every process of a sandbox, and hitting them harms nobody else.

Each test runs in a fresh sandbox (a limit hit leaves it busy for a while) with a neighbour
that must keep answering. Sandboxes get the server's default limits (1024 MiB, 2 CPUs,
1024 pids): the tests read them back from the host's cgroup files.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2b import Sandbox
from test_isolation import run_any  # the shared "result whatever the exit code" helper

pytestmark = [pytest.mark.requires_isolation, pytest.mark.usefixtures("corral_server")]

CGROUP = Path("/sys/fs/cgroup")


def _v1_or_v2(controller: str, sandbox_id: str, v1_file: str, v2_file: str) -> Path:
    v1 = CGROUP / controller / "corral" / sandbox_id / v1_file
    return v1 if v1.exists() else CGROUP / "corral" / sandbox_id / v2_file


def _pids_of(sandbox_id: str) -> set[int]:
    procs = _v1_or_v2("pids", sandbox_id, "cgroup.procs", "cgroup.procs")
    return {int(pid) for pid in procs.read_text().split()}


@pytest.fixture
def pair() -> Iterator[tuple[Any, Any]]:
    hog, neighbour = Sandbox.create(timeout=120), Sandbox.create(timeout=120)
    try:
        yield hog, neighbour
    finally:
        for sbx in (hog, neighbour):
            with contextlib.suppress(Exception):
                sbx.kill()


def test_every_process_of_the_sandbox_is_in_its_cgroups(pair: tuple[Any, Any]) -> None:
    sbx, _ = pair
    handle = sbx.commands.run("sleep 60", background=True)
    in_cgroup = _pids_of(sbx.sandbox_id)
    for controller in ("memory", "cpu"):
        procs = _v1_or_v2(controller, sbx.sandbox_id, "cgroup.procs", "cgroup.procs")
        assert {int(p) for p in procs.read_text().split()} == in_cgroup
    # the agent (pid 1 inside) and the sleep are there, and nothing of the host is
    assert len(in_cgroup) >= 2
    for pid in in_cgroup:
        status = Path(f"/proc/{pid}/status").read_text()
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        assert uid >= 100_000, f"pid {pid} of the sandbox runs as host uid {uid}"
    handle.kill()


def test_limits_are_written(pair: tuple[Any, Any]) -> None:
    sbx, _ = pair
    info = sbx.get_info()
    memory = _v1_or_v2("memory", sbx.sandbox_id, "memory.limit_in_bytes", "memory.max")
    assert int(memory.read_text()) == info.memory_mb * 1024 * 1024
    pids_max = _v1_or_v2("pids", sbx.sandbox_id, "pids.max", "pids.max")
    assert int(pids_max.read_text()) > 0
    quota = CGROUP / "cpu" / "corral" / sbx.sandbox_id / "cpu.cfs_quota_us"
    if quota.exists():
        period = int((quota.parent / "cpu.cfs_period_us").read_text())
        assert int(quota.read_text()) == info.cpu_count * period
    else:
        max_quota, max_period = (CGROUP / "corral" / sbx.sandbox_id / "cpu.max").read_text().split()
        assert int(max_quota) == info.cpu_count * int(max_period)


def test_memory_hog_is_killed_inside_and_the_sandbox_survives(pair: tuple[Any, Any]) -> None:
    hog, neighbour = pair
    limit_mb = hog.get_info().memory_mb
    result = run_any(
        hog,
        f"python3 -c 'b = bytearray({limit_mb * 2} * 1024 * 1024); print(len(b))'",
    )
    assert result.exit_code != 0 and result.stdout == "", "the hog allocated past the limit"
    assert hog.commands.run("echo alive").stdout == "alive\n"
    assert neighbour.commands.run("echo fine").stdout == "fine\n"


def test_process_count_is_bounded_and_the_sandbox_recovers(pair: tuple[Any, Any]) -> None:
    hog, neighbour = pair
    pids_max = int(_v1_or_v2("pids", hog.sandbox_id, "pids.max", "pids.max").read_text())
    spawn_until_refused = (
        "import os\n"
        "n = 0\n"
        "try:\n"
        f"    while n < {pids_max * 2}:\n"
        "        os.posix_spawn('/bin/sleep', ['sleep', '3'], {})\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print('refused', n, exc.errno)\n"
    )
    result = run_any(hog, f'python3 -c "{spawn_until_refused}"')
    fields = result.stdout.split()
    assert fields[:1] == ["refused"], (result.stdout, result.stderr)
    assert int(fields[1]) < pids_max and fields[2] == "11"  # EAGAIN
    assert neighbour.commands.run("echo fine").stdout == "fine\n"
    deadline = time.monotonic() + 20
    while True:  # the sleeps end after 3 s and the agent reaps them: the sandbox recovers
        try:
            assert hog.commands.run("echo alive", timeout=5).stdout == "alive\n"
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_many_small_processes_over_the_limit_never_kill_the_agent(
    pair: tuple[Any, Any],
) -> None:
    hog, neighbour = pair
    limit_mb = hog.get_info().memory_mb
    # Each process is smaller than the agent, so only the agent's OOM preference saves it.
    count = limit_mb // 8
    flood = (
        f"for i in $(seq {count}); do "
        "python3 -c 'import time; b = bytearray(9 << 20); time.sleep(20)' & done; "
        "sleep 8; echo flooded"
    )
    result = run_any(hog, flood)
    assert "flooded" in result.stdout, (result.stdout, result.stderr[-500:])
    assert hog.commands.run("echo alive").stdout == "alive\n"
    assert neighbour.commands.run("echo fine").stdout == "fine\n"
