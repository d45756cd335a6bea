"""Reading a sandbox's usage from cgroup files (v1 hybrid and v2) and its disk use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.runtime._linux.cgroup_stats import CgroupUsage, read_cgroup_usage
from corral.runtime._linux.cgroups import CgroupLayout
from corral.runtime._linux.disk_usage import MAX_DEPTH, tree_bytes

SID = "i" * 20


def _write(group: Path, files: dict[str, str]) -> None:
    group.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (group / name).write_text(text)


def _v1_layout(root: Path) -> CgroupLayout:
    controllers = ("memory", "cpu", "cpuacct", "pids", "freezer")
    return CgroupLayout(v2=root / "unified", v1=tuple((c, root / c) for c in controllers))


def test_v1_files_are_read_and_cache_is_not_counted_as_used(tmp_path: Path) -> None:
    layout = _v1_layout(tmp_path)
    _write(
        tmp_path / "memory/corral" / SID,
        {
            "memory.usage_in_bytes": "50000\n",
            "memory.stat": "cache 999\nrss 5\ntotal_cache 20000\ntotal_rss 30000\n",
            "memory.limit_in_bytes": "1073741824\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        },
    )
    _write(tmp_path / "cpuacct/corral" / SID, {"cpuacct.usage": "123456789\n"})
    _write(
        tmp_path / "cpu/corral" / SID,
        {"cpu.stat": "nr_periods 10\nnr_throttled 4\nthrottled_time 7000000\n"},
    )
    _write(tmp_path / "pids/corral" / SID, {"pids.events": "max 12\n"})
    assert read_cgroup_usage(layout, SID) == CgroupUsage(
        cpu_usage_ns=123456789,
        memory_used=30000,
        memory_cache=20000,
        memory_limit=1073741824,
        oom_kills=3,
        pids_max_hits=12,
        throttled_periods=4,
        throttled_ns=7000000,
    )


def test_v1_without_limit_or_optional_files_reads_zero(tmp_path: Path) -> None:
    layout = _v1_layout(tmp_path)
    _write(
        tmp_path / "memory/corral" / SID,
        {
            "memory.usage_in_bytes": "100\n",
            "memory.stat": "cache 40\n",  # no hierarchical total_cache: use cache
            "memory.limit_in_bytes": "9223372036854771712\n",  # no limit
        },
    )
    usage = read_cgroup_usage(layout, SID)
    assert usage == CgroupUsage(
        cpu_usage_ns=0,
        memory_used=60,
        memory_cache=40,
        memory_limit=0,
        oom_kills=0,
        pids_max_hits=0,
        throttled_periods=0,
        throttled_ns=0,
    )


def test_v2_files_are_read(tmp_path: Path) -> None:
    layout = CgroupLayout(v2=tmp_path, v1=())
    _write(
        tmp_path / "corral" / SID,
        {
            "cpu.stat": "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"
            "nr_periods 9\nnr_throttled 2\nthrottled_usec 40\n",
            "memory.current": "8192\n",
            "memory.stat": "anon 4096\nfile 1024\n",
            "memory.max": "268435456\n",
            "memory.events": "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n",
            "pids.events": "max 6\n",
        },
    )
    assert read_cgroup_usage(layout, SID) == CgroupUsage(
        cpu_usage_ns=2_500_000,
        memory_used=7168,
        memory_cache=1024,
        memory_limit=268435456,
        oom_kills=1,
        pids_max_hits=6,
        throttled_periods=2,
        throttled_ns=40_000,
    )
    (tmp_path / "corral" / SID / "memory.max").write_text("max\n")
    usage = read_cgroup_usage(layout, SID)
    assert usage is not None and usage.memory_limit == 0


@pytest.mark.parametrize("pure_v2", [False, True])
def test_a_missing_group_is_none(tmp_path: Path, pure_v2: bool) -> None:
    layout = CgroupLayout(v2=tmp_path, v1=()) if pure_v2 else _v1_layout(tmp_path)
    assert read_cgroup_usage(layout, SID) is None


def test_tree_bytes_counts_blocks_once_per_inode_and_ignores_symlink_targets(
    tmp_path: Path,
) -> None:
    empty = tree_bytes(str(tmp_path))
    data = tmp_path / "d" / "data"
    data.parent.mkdir()
    data.write_bytes(os.urandom(256 * 1024))
    with_file = tree_bytes(str(tmp_path))
    assert with_file - empty >= 256 * 1024
    os.link(data, tmp_path / "hardlink")
    (tmp_path / "symlink").symlink_to(data)
    assert tree_bytes(str(tmp_path)) - with_file < 64 * 1024  # neither counts the data again
    assert tree_bytes(str(tmp_path / "missing")) == 0
    assert tree_bytes(str(data)) >= 256 * 1024


def test_tree_bytes_never_leaves_the_tree_and_survives_deep_nesting(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(os.urandom(512 * 1024))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "escape").symlink_to(outside, target_is_directory=True)
    assert tree_bytes(str(tree)) < 64 * 1024
    deep = tree
    for _ in range(MAX_DEPTH + 10):
        deep = deep / "d"
    deep.mkdir(parents=True)
    before = tree_bytes(str(tree))
    (deep / "data").write_bytes(os.urandom(512 * 1024))
    assert tree_bytes(str(tree)) == before  # too deep: not counted, and no error
    (tree / "d" / "data").write_bytes(os.urandom(512 * 1024))
    assert tree_bytes(str(tree)) >= before + 512 * 1024
