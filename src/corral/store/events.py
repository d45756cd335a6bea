"""`LimitEvent`: a sandbox hit one of its resource limits (what the store keeps of it)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["EVENTS_PER_SANDBOX", "LimitEvent", "LimitKind"]

EVENTS_PER_SANDBOX = 1000
"""A store keeps at most this many events per sandbox (the newest)."""


class LimitKind(enum.Enum):
    """Which limit was hit. The values are the wire names."""

    OOM_KILL = "oom_kill"
    """The out-of-memory killer ended processes of the sandbox (memory limit)."""
    PIDS_MAX = "pids_max"
    """Forks were refused: the sandbox reached its process limit."""
    CPU_THROTTLED = "cpu_throttled"
    """The sandbox used up its CPU quota and its processes had to wait."""
    DISK_FULL = "disk_full"
    """The sandbox's writable layer reached its disk limit."""


@dataclass(frozen=True)
class LimitEvent:
    """One observation of a limit being hit, between two samples of the sandbox."""

    sandbox_id: str
    timestamp: float
    """Unix time of the sample that saw it (the hit happened since the previous sample)."""
    kind: LimitKind
    detail: str
    """One human sentence: what happened, with the limit that was hit."""
    count: int
    """How much the kernel's counter grew (kills, refused forks, throttled periods); 1 for
    a disk that became full."""
