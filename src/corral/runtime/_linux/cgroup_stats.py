"""Read one sandbox's resource use and limit-hit counters from its cgroups (v1 or v2).

Which file answers what:

| value          | cgroup v1 (hybrid hosts)                    | cgroup v2                   |
|----------------|---------------------------------------------|-----------------------------|
| CPU time       | `cpuacct.usage` (ns)                        | `cpu.stat` `usage_usec`     |
| memory in use  | `memory.usage_in_bytes`                     | `memory.current`            |
| page cache     | `memory.stat` `total_cache` (else `cache`)  | `memory.stat` `file`        |
| memory limit   | `memory.limit_in_bytes`                     | `memory.max`                |
| OOM kills      | `memory.oom_control` `oom_kill`             | `memory.events` `oom_kill`  |
| refused forks  | `pids.events` `max`                         | `pids.events` `max`         |
| CPU throttling | `cpu.stat` `nr_throttled`, `throttled_time` | same, `throttled_usec`      |

`memory_used` is "in use" minus the page cache, as the E2B metrics mean it. A missing file
(controller not mounted, old kernel) reads as 0; a missing sandbox group reads as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corral.runtime._linux.cgroups import GROUP, CgroupLayout

__all__ = ["CgroupUsage", "read_cgroup_usage"]

# Limits at or above this are "no limit" (v1 writes PAGE_COUNTER_MAX * page size).
_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class CgroupUsage:
    """The cgroup part of a `UsageSample` (everything but the disk)."""

    cpu_usage_ns: int
    memory_used: int
    memory_cache: int
    memory_limit: int
    """0 when the group has no memory limit."""
    oom_kills: int
    pids_max_hits: int
    throttled_periods: int
    throttled_ns: int


def read_cgroup_usage(layout: CgroupLayout, sandbox_id: str) -> CgroupUsage | None:
    """The sandbox's usage, or None if its cgroups are gone."""
    if layout.is_pure_v2:
        assert layout.v2 is not None
        return _read_v2(layout.v2 / GROUP / sandbox_id)
    return _read_v1({c: root / GROUP / sandbox_id for c, root in layout.v1})


def _read_v1(groups: dict[str, Path]) -> CgroupUsage | None:
    memory = groups.get("memory")
    if memory is None or not memory.is_dir():
        return None
    cpuacct, cpu, pids = groups.get("cpuacct"), groups.get("cpu"), groups.get("pids")
    stat = _keyed(memory / "memory.stat")
    cache = stat.get("total_cache", stat.get("cache", 0))
    used = _int(memory / "memory.usage_in_bytes")
    cpu_stat = _keyed(cpu / "cpu.stat") if cpu is not None else {}
    return CgroupUsage(
        cpu_usage_ns=_int(cpuacct / "cpuacct.usage") if cpuacct is not None else 0,
        memory_used=max(0, used - cache),
        memory_cache=cache,
        memory_limit=_limit(_int(memory / "memory.limit_in_bytes")),
        oom_kills=_keyed(memory / "memory.oom_control").get("oom_kill", 0),
        pids_max_hits=_keyed(pids / "pids.events").get("max", 0) if pids is not None else 0,
        throttled_periods=cpu_stat.get("nr_throttled", 0),
        throttled_ns=cpu_stat.get("throttled_time", 0),
    )


def _read_v2(group: Path) -> CgroupUsage | None:
    if not group.is_dir():
        return None
    cpu_stat = _keyed(group / "cpu.stat")
    cache = _keyed(group / "memory.stat").get("file", 0)
    max_text = _text(group / "memory.max").strip()
    return CgroupUsage(
        cpu_usage_ns=cpu_stat.get("usage_usec", 0) * 1000,
        memory_used=max(0, _int(group / "memory.current") - cache),
        memory_cache=cache,
        memory_limit=_limit(int(max_text)) if max_text.isdigit() else 0,
        oom_kills=_keyed(group / "memory.events").get("oom_kill", 0),
        pids_max_hits=_keyed(group / "pids.events").get("max", 0),
        throttled_periods=cpu_stat.get("nr_throttled", 0),
        throttled_ns=cpu_stat.get("throttled_usec", 0) * 1000,
    )


def _limit(value: int) -> int:
    return 0 if value >= _UNLIMITED else value


def _text(path: Path) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # the controller is not mounted, or the group went away meanwhile
        return ""


def _int(path: Path) -> int:
    text = _text(path).strip()
    return int(text) if text.isdigit() else 0


def _keyed(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (`name value` per line) as a dict; odd lines are skipped."""
    values: dict[str, int] = {}
    for line in _text(path).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            values[parts[0]] = int(parts[1])
    return values
