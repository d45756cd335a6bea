"""Per-sandbox limits asked for at create time hold inside the sandbox and harm nobody else.

The E2B SDK cannot send Corral's limit keys, so sandboxes are created with plain HTTP and
then driven through the SDK (`Sandbox.connect`). Covered: requested limits reach the host's
cgroup files, RLIMIT_NOFILE and the disk quota; a request above a ceiling is a 400; a full
open-file table and a full writable layer fail inside with EMFILE / EDQUOT while the sandbox
keeps working, the host's disk is not touched beyond the quota, and a neighbour is
unaffected; the disk quota survives a `kill -9` of the server.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b import AsyncSandbox, Sandbox
from test_isolation import run_any  # the shared "result whatever the exit code" helper

import _harness as harness

pytestmark = pytest.mark.requires_isolation

API_KEY = {"X-API-KEY": "e2b_corral_test"}
CGROUP = Path("/sys/fs/cgroup")
MIB = 1024 * 1024

Create = Callable[..., Any]


def _cgroup_file(controller: str, sandbox_id: str, v1_file: str, v2_file: str) -> Path:
    v1 = CGROUP / controller / "corral" / sandbox_id / v1_file
    return v1 if v1.exists() else CGROUP / "corral" / sandbox_id / v2_file


def _create_raw(url: str, **limits: int) -> httpx.Response:
    body = {"templateID": "base", "timeout": 120, **limits}
    return httpx.post(f"{url}/sandboxes", json=body, headers=API_KEY, timeout=60)


@pytest.fixture
def create_with_limits(
    corral_server: harness.CorralServer, sandbox_registry: Any
) -> Iterator[Create]:
    """`create(**limits)`: a sandbox made over HTTP with Corral's limit keys, as an SDK object."""
    made: list[Any] = []

    def create(**limits: int) -> Any:
        response = _create_raw(corral_server.url, **limits)
        assert response.status_code == 201, response.text
        sandbox_id = response.json()["sandboxID"]
        sandbox_registry.add(sandbox_id)
        sbx = Sandbox.connect(sandbox_id)
        made.append(sbx)
        return sbx

    try:
        yield create
    finally:
        for sbx in made:
            with contextlib.suppress(Exception):
                sbx.kill()


def test_requested_limits_reach_cgroups_rlimit_and_get_info(
    create_with_limits: Create, corral_server: harness.CorralServer
) -> None:
    sbx = create_with_limits(cpuCount=1, memoryMB=384, diskSizeMB=256, pidsMax=300, openFiles=512)
    sandbox_id = sbx.sandbox_id
    memory = _cgroup_file("memory", sandbox_id, "memory.limit_in_bytes", "memory.max")
    assert int(memory.read_text()) == 384 * MIB
    assert int(_cgroup_file("pids", sandbox_id, "pids.max", "pids.max").read_text()) == 300
    quota = CGROUP / "cpu" / "corral" / sandbox_id / "cpu.cfs_quota_us"
    if quota.exists():
        assert int(quota.read_text()) == int((quota.parent / "cpu.cfs_period_us").read_text())
    else:
        max_quota, period = (CGROUP / "corral" / sandbox_id / "cpu.max").read_text().split()
        assert max_quota == period

    limits = sbx.commands.run("ulimit -Sn; ulimit -Hn; sudo sh -c 'ulimit -Hn'").stdout.split()
    assert limits == ["512", "512", "512"]
    assert sbx.commands.run("nproc").stdout.strip() == "1"  # CPU affinity follows cpuCount
    raised = run_any(sbx, "sudo sh -c 'ulimit -Hn 4096' && echo raised")
    assert "raised" not in raised.stdout  # sandbox root cannot raise its hard limit

    info = sbx.get_info()
    assert (info.cpu_count, info.memory_mb) == (1, 384)
    detail = httpx.get(f"{corral_server.url}/sandboxes/{sandbox_id}", headers=API_KEY).json()
    assert (detail["cpuCount"], detail["memoryMB"], detail["diskSizeMB"]) == (1, 384, 256)


async def test_async_sdk_reads_the_requested_limits(
    create_with_limits: Create, corral_server: harness.CorralServer
) -> None:
    sbx = create_with_limits(cpuCount=1, memoryMB=256)
    info = await AsyncSandbox.get_info(sbx.sandbox_id)
    assert (info.cpu_count, info.memory_mb) == (1, 256)
    connected = await AsyncSandbox.connect(sbx.sandbox_id)
    assert (await connected.commands.run("ulimit -n")).stdout.strip() == "1024"  # the default
    assert (await connected.commands.run("nproc")).stdout.strip() == "1"


@pytest.mark.parametrize(
    ("key", "value"),
    [("memoryMB", 10**6), ("cpuCount", 1000), ("diskSizeMB", 10**8), ("openFiles", 10**7)],
)
def test_request_above_the_ceiling_is_refused(
    corral_server: harness.CorralServer, key: str, value: int
) -> None:
    response = _create_raw(corral_server.url, **{key: value})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400
    assert body["message"].startswith(f"'{key}' is {value}; this server allows at most ")


def test_open_file_limit_gives_emfile_and_the_sandbox_keeps_working(
    create_with_limits: Create,
) -> None:
    sbx = create_with_limits(openFiles=300)
    script = (
        "import os\n"
        "fds = []\n"
        "try:\n"
        "    while True: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
        "except OSError as exc: print(exc.errno, len(fds))\n"
    )
    result = sbx.commands.run(f'python3 -c "{script}"')
    errno_seen, opened = result.stdout.split()
    assert int(errno_seen) == 24  # EMFILE
    assert 280 <= int(opened) < 300
    assert sbx.commands.run("echo alive").stdout == "alive\n"


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_filling_the_disk_quota_fails_inside_and_spares_host_and_neighbour(
    create_with_limits: Create, corral_server: harness.CorralServer
) -> None:
    pool_image = corral_server.state_dir / "disk-pool.img"
    filler = create_with_limits(diskSizeMB=64)
    neighbour = create_with_limits(diskSizeMB=256)
    before = _allocated(pool_image)

    fill = run_any(filler, "dd if=/dev/zero of=/home/user/fill bs=1M count=200 conv=fsync")
    assert fill.exit_code != 0
    assert "Disk quota exceeded" in fill.stderr  # EDQUOT, not ENOSPC: the pool has room
    written = int(filler.commands.run("stat -c %s /home/user/fill").stdout)
    assert 16 * MIB <= written <= 64 * MIB
    # The image (all sandboxes' writable layers) grew by at most the quota plus metadata.
    os.sync()  # the overlay is volatile: the sandbox's fsync does not reach the image
    assert _allocated(pool_image) - before <= 64 * MIB + 32 * MIB

    neighbour.commands.run("dd if=/dev/zero of=/home/user/ok bs=1M count=100 conv=fsync")
    assert neighbour.commands.run("stat -c %s /home/user/ok").stdout.strip() == str(100 * MIB)

    filler.commands.run("rm /home/user/fill && sync")
    # Freed space returns once btrfs commits; dd retries for a while instead of racing it.
    again = filler.commands.run(
        "for i in $(seq 100); do dd if=/dev/zero of=/home/user/again bs=1M count=16 "
        "conv=fsync 2>/dev/null && break; sleep 0.2; done; stat -c %s /home/user/again",
        timeout=60,
    )
    assert again.stdout.strip() == str(16 * MIB)
    assert filler.commands.run("echo alive").stdout == "alive\n"


def test_disk_quota_survives_a_server_crash() -> None:
    server = harness.CorralServer()
    server.start()
    try:
        response = _create_raw(server.url, diskSizeMB=64)
        assert response.status_code == 201, response.text
        sandbox_id = response.json()["sandboxID"]
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        server.start()  # the pool is still mounted: it is reused, the sandbox re-adopted
        env = harness.sdk_env(server)
        sbx = Sandbox.connect(
            sandbox_id,
            api_url=env["E2B_API_URL"],
            sandbox_url=env["E2B_SANDBOX_URL"],
            api_key="k",
        )
        fill = run_any(sbx, "dd if=/dev/zero of=/home/user/fill bs=1M count=200")
        assert "Disk quota exceeded" in fill.stderr
        sbx.kill()
        assert not (server.state_dir / "sandboxes" / sandbox_id).exists()
    finally:
        server.stop()
        leaks = harness.find_leaks([], [server.state_dir, server.run_dir])
        server.remove_workdir()
        assert leaks == [], "\n".join(leaks)
