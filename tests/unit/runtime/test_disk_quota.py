"""The disk pool and its volumes on the real kernel (root, btrfs and btrfs-progs needed)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.runtime._linux.disk_quota import (
    StoragePool,
    create_volume,
    remove_volume,
    volume_usage,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mkfs.btrfs") is None,
    reason="needs root and mkfs.btrfs (btrfs-progs)",
)

MIB = 1024 * 1024


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as mountinfo:
        return any(line.split()[4] == str(path) for line in mountinfo)


@pytest.fixture
async def pool() -> AsyncIterator[StoragePool]:
    workdir = Path(tempfile.mkdtemp(prefix="corral-pool-"))
    storage = StoragePool(workdir / "disk-pool.img", workdir / "sandboxes", 512)
    await storage.open()
    try:
        yield storage
    finally:
        for entry in storage.mountpoint.iterdir():
            remove_volume(str(entry))
        storage.close()
        shutil.rmtree(workdir)


async def test_open_makes_a_sparse_pool_and_reuses_it(pool: StoragePool) -> None:
    assert _mounted(pool.mountpoint)
    info = os.stat(pool.image)
    assert info.st_size == 512 * MIB and info.st_blocks * 512 < 64 * MIB
    await pool.open()  # already mounted (as after a crash): reused, not mounted twice
    with open("/proc/self/mountinfo") as mountinfo:
        assert sum(line.split()[4] == str(pool.mountpoint) for line in mountinfo) == 1


async def test_a_volume_refuses_writes_past_its_limit(pool: StoragePool) -> None:
    volume = str(pool.mountpoint / "a")
    create_volume(volume, 8 * MIB)
    with pytest.raises(OSError) as caught, open(f"{volume}/fill", "wb") as fill:
        for _ in range(32):
            fill.write(b"x" * MIB)
            fill.flush()
            os.fsync(fill.fileno())
    assert caught.value.errno == errno.EDQUOT
    os.sync()
    usage = volume_usage(volume)
    assert usage is not None
    used, limit = usage
    assert limit == 8 * MIB and 4 * MIB <= used <= limit
    neighbour = str(pool.mountpoint / "b")
    create_volume(neighbour, 64 * MIB)
    with open(f"{neighbour}/data", "wb") as data:
        data.write(b"y" * 16 * MIB)  # a full neighbour does not limit this one
    os.mkdir(f"{neighbour}/sub")
    assert volume_usage(f"{neighbour}/sub") is None  # a directory in a volume is not one
    assert volume_usage(str(pool.mountpoint / "missing")) is None


async def test_remove_volume_handles_volumes_plain_dirs_and_absent_paths(
    pool: StoragePool,
) -> None:
    volume = pool.mountpoint / "v"
    create_volume(str(volume), 8 * MIB)
    (volume / "upper").mkdir()
    (volume / "upper" / "f").write_text("x")
    remove_volume(str(volume))
    assert not volume.exists()
    plain = pool.mountpoint / "plain"
    (plain / "upper").mkdir(parents=True)
    remove_volume(str(plain))
    assert not plain.exists()
    remove_volume(str(pool.mountpoint / "missing"))


async def test_close_keeps_a_pool_that_still_holds_volumes(pool: StoragePool) -> None:
    create_volume(str(pool.mountpoint / "live"), 8 * MIB)
    pool.close()
    assert _mounted(pool.mountpoint)  # a live sandbox's overlay may still use it
    remove_volume(str(pool.mountpoint / "live"))
    pool.close()
    assert not _mounted(pool.mountpoint)
    await pool.open()  # the fixture's teardown expects it open


async def test_open_refuses_to_hide_existing_entries() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="corral-pool-"))
    try:
        (workdir / "sandboxes" / "old").mkdir(parents=True)
        with pytest.raises(OSError, match="not empty"):
            await StoragePool(workdir / "disk-pool.img", workdir / "sandboxes", 512).open()
        assert not (workdir / "disk-pool.img").exists()
    finally:
        shutil.rmtree(workdir)


def test_drop_quota_override_clears_only_cap_sys_resource_from_the_effective_set() -> None:
    script = (
        "from corral.runtime._linux.disk_quota import drop_quota_override\n"
        "def caps():\n"
        "    lines = open('/proc/self/status').read().splitlines()\n"
        "    return {l.split(':')[0]: int(l.split()[1], 16)\n"
        "            for l in lines if l.startswith('Cap')}\n"
        "before = caps(); drop_quota_override(); after = caps()\n"
        "print(before['CapEff'], after['CapEff'], before['CapPrm'], after['CapPrm'])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    eff_before, eff_after, prm_before, prm_after = map(int, out.stdout.split())
    assert eff_after == eff_before & ~(1 << 24)
    assert prm_after == prm_before
