"""Sandbox telemetry: periodic usage samples (metrics history) and limit events.

Data flow::

    Telemetry sampler task, every `interval` s (and once right after a sandbox starts)
      └─ runtime.usage(id) ─► UsageSample (cumulative counters + current levels)
           ├─ compared with the previous sample ─► SandboxMetric (cpu % over the gap)
           │     └─ ring buffer per sandbox (last `history_s`), dropped with the sandbox
           └─ counters that grew ─► LimitEvent (oom_kill, pids_max, cpu_throttled) and a
                 disk that became full (disk_full) ─► store (outlive the sandbox)

Counters are compared with the previous sample of the same sandbox; a fresh sandbox starts
from zero, a sandbox re-adopted after a restart starts from its first sample (hits while
the server was down are not reported). Events older than `retention_s` are pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from corral.model import Limits
from corral.orchestrator.errors import SandboxNotFound
from corral.runtime import Runtime, UsageSample
from corral.store import LimitEvent, LimitKind, Store, StoreError

__all__ = ["LimitEvent", "LimitKind", "SandboxMetric", "Telemetry", "detect_limit_events"]

log = logging.getLogger("corral.telemetry")

_MIB = 1024 * 1024
_MAX_HISTORY = 10_000
_PRUNE_EVERY_S = 3600.0
# After create, the client's first requests go first (see `Telemetry._first_sample`).
_FIRST_SAMPLE_DELAY_S = 0.2


@dataclass(frozen=True)
class SandboxMetric:
    """One point of a sandbox's metrics series (E2B `SandboxMetric`; bytes)."""

    timestamp: float
    cpu_count: int
    cpu_used_pct: float
    """CPU time used since the previous sample over the CPU time the limit allows, 0-100."""
    mem_used: int
    mem_total: int
    mem_cache: int
    disk_used: int
    disk_total: int


@dataclass
class _Tracked:
    sandbox_id: str
    limits: Limits
    history: deque[SandboxMetric]
    last: UsageSample | None
    last_at: float
    report_hits: bool
    """False until the first sample of a re-adopted sandbox has set the counters' baseline."""
    disk_full: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    first: asyncio.Task[None] | None = None
    sample_now: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by a query that needs the first sample before its delay is over."""


class Telemetry:
    """Samples every tracked sandbox; answers metrics and limit-event queries."""

    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        *,
        interval: float,
        history_s: float = 3600.0,
        retention_s: float = 7 * 24 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"the metrics interval must be positive, not {interval}")
        self._runtime = runtime
        self._store = store
        self._interval = interval
        self._history_len = max(1, min(_MAX_HISTORY, math.ceil(history_s / interval)))
        self._retention_s = retention_s
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._sampler: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Start the periodic sampler (on the running loop)."""
        if self._sampler is None:
            self._sampler = asyncio.get_running_loop().create_task(
                self._run(), name="telemetry-sampler"
            )

    async def close(self) -> None:
        """Stop sampling; history is dropped, stored events stay."""
        tasks = [t.first for t in self._tracked.values() if t.first is not None]
        if self._sampler is not None:
            tasks.append(self._sampler)
            self._sampler = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tracked.clear()

    def track(
        self, sandbox_id: str, limits: Limits, started_at: float, *, adopted: bool = False
    ) -> None:
        """Start sampling a running sandbox; its first sample is taken shortly after (at
        once if queried before).

        `adopted`: the sandbox ran before this server started; its counters are a baseline,
        not hits to report.
        """
        entry = _Tracked(
            sandbox_id=sandbox_id,
            limits=limits,
            history=deque(maxlen=self._history_len),
            last=None,
            last_at=started_at,
            report_hits=not adopted,
        )
        self._tracked[sandbox_id] = entry
        entry.first = asyncio.get_running_loop().create_task(
            self._first_sample(entry), name=f"telemetry-first-{sandbox_id}"
        )

    def forget(self, sandbox_id: str) -> None:
        """Stop sampling and drop the history (the sandbox is gone)."""
        entry = self._tracked.pop(sandbox_id, None)
        if entry is not None and entry.first is not None:
            entry.first.cancel()

    async def metrics(
        self, sandbox_id: str, start: int | None = None, end: int | None = None
    ) -> list[SandboxMetric]:
        """Samples of a running sandbox whose unix second is within [start, end], oldest
        first. Raises `SandboxNotFound`."""
        entry = await self._sampled(sandbox_id)
        return [
            m
            for m in entry.history
            if (start is None or int(m.timestamp) >= start)
            and (end is None or int(m.timestamp) <= end)
        ]

    async def latest(self, sandbox_ids: Iterable[str]) -> dict[str, SandboxMetric]:
        """The newest sample of each running sandbox among `sandbox_ids` (others omitted)."""
        found: dict[str, SandboxMetric] = {}
        for sandbox_id in sandbox_ids:
            try:
                entry = await self._sampled(sandbox_id)
            except SandboxNotFound:
                continue
            if entry.history:
                found[sandbox_id] = entry.history[-1]
        return found

    def events(self, sandbox_id: str) -> list[LimitEvent]:
        """Kept limit events of a sandbox, running or removed, oldest first. Raises
        `SandboxNotFound` if it is not running and nothing is kept of it."""
        events = self._store.limit_events(sandbox_id)
        if not events and sandbox_id not in self._tracked:
            raise SandboxNotFound(sandbox_id)
        return events

    async def sample_all(self) -> None:
        """Take one sample of every tracked sandbox (what the sampler does each interval).

        One sandbox at a time, yielding to the event loop in between: reading one sandbox's
        cgroup files takes ~0.3 ms on the loop, so requests wait for one read, not for all.
        """
        for entry in list(self._tracked.values()):
            await self._sample(entry)
            await asyncio.sleep(0)

    async def _sampled(self, sandbox_id: str) -> _Tracked:
        """The entry, after its first sample (a query right after create sees one)."""
        entry = self._tracked.get(sandbox_id)
        if entry is None:
            raise SandboxNotFound(sandbox_id)
        if entry.first is not None and not entry.first.done():
            entry.sample_now.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(entry.first)
        return entry

    async def _first_sample(self, entry: _Tracked) -> None:
        """The first sample, `_FIRST_SAMPLE_DELAY_S` after create or when a query wants it.

        Not at once: reading the counters on the event loop would delay the client's
        first request to the new sandbox, which typically follows create immediately.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(entry.sample_now.wait(), _FIRST_SAMPLE_DELAY_S)
        await self._sample(entry)

    async def _run(self) -> None:
        next_prune = 0.0
        while True:
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + _PRUNE_EVERY_S
                self._prune()
            await asyncio.sleep(self._interval)
            try:
                await self.sample_all()
            except Exception:
                log.exception("telemetry sampling failed")

    def _prune(self) -> None:
        try:
            deleted = self._store.prune_limit_events(self._clock() - self._retention_s)
        except StoreError:
            log.exception("could not prune old limit events")
            return
        if deleted:
            log.info("pruned %d limit event(s) older than %.0f s", deleted, self._retention_s)

    async def _sample(self, entry: _Tracked) -> None:
        async with entry.lock:
            try:
                usage = await self._runtime.usage(entry.sandbox_id)
            except Exception:
                log.exception("could not read the usage of sandbox %s", entry.sandbox_id)
                return
            if usage is None or self._tracked.get(entry.sandbox_id) is not entry:
                return  # gone meanwhile
            now = self._clock()
            entry.history.append(_metric(entry, usage, now))
            events: list[LimitEvent] = []
            if entry.report_hits:
                events = detect_limit_events(
                    entry.sandbox_id, entry.limits, entry.last, usage, now, entry.disk_full
                )
            entry.last, entry.last_at, entry.report_hits = usage, now, True
            entry.disk_full = _disk_full(usage, entry.limits)
        if events:
            for event in events:
                log.info("sandbox %s hit a limit: %s", event.sandbox_id, event.detail)
            try:
                self._store.add_limit_events(events)
            except StoreError:
                log.exception("could not record limit events of sandbox %s", entry.sandbox_id)


def _metric(entry: _Tracked, usage: UsageSample, now: float) -> SandboxMetric:
    cpu_count = entry.limits.cpu_count
    previous_cpu = entry.last.cpu_usage_ns if entry.last is not None else 0
    wall_ns = (now - entry.last_at) * 1e9 * cpu_count
    used = max(0, usage.cpu_usage_ns - previous_cpu)
    pct = min(100.0, used / wall_ns * 100) if wall_ns > 0 else 0.0
    return SandboxMetric(
        timestamp=now,
        cpu_count=cpu_count,
        cpu_used_pct=round(pct, 2),
        mem_used=usage.memory_used,
        mem_total=usage.memory_limit or entry.limits.memory_mb * _MIB,
        mem_cache=usage.memory_cache,
        disk_used=usage.disk_used,
        disk_total=_disk_limit(usage, entry.limits),
    )


def _disk_limit(usage: UsageSample, limits: Limits) -> int:
    return usage.disk_limit or limits.disk_mb * _MIB


def _disk_full(usage: UsageSample, limits: Limits) -> bool:
    limit = _disk_limit(usage, limits)
    return 0 < limit <= usage.disk_used


def detect_limit_events(
    sandbox_id: str,
    limits: Limits,
    previous: UsageSample | None,
    current: UsageSample,
    now: float,
    was_disk_full: bool = False,
) -> list[LimitEvent]:
    """The limits hit between `previous` (None: the sandbox's start, all counters 0) and
    `current`; a disk counts once when it becomes full."""

    def grew(counter: str) -> int:
        before = getattr(previous, counter) if previous is not None else 0
        return max(0, int(getattr(current, counter)) - int(before))

    events: list[LimitEvent] = []

    def add(kind: LimitKind, count: int, detail: str) -> None:
        events.append(LimitEvent(sandbox_id, now, kind, detail, count))

    memory_mib = (current.memory_limit or limits.memory_mb * _MIB) // _MIB
    if kills := grew("oom_kills"):
        add(
            LimitKind.OOM_KILL,
            kills,
            f"{kills} process(es) killed by the out-of-memory killer at the memory limit "
            f"of {memory_mib} MiB",
        )
    if refused := grew("pids_max_hits"):
        add(
            LimitKind.PIDS_MAX,
            refused,
            f"{refused} fork(s) refused at the limit of {limits.pids_max} processes",
        )
    if periods := grew("throttled_periods"):
        waited_ms = grew("throttled_ns") / 1e6
        add(
            LimitKind.CPU_THROTTLED,
            periods,
            f"throttled in {periods} scheduler period(s), {waited_ms:.0f} ms in all, at the "
            f"limit of {limits.cpu_count} CPU(s)",
        )
    if _disk_full(current, limits) and not was_disk_full:
        add(
            LimitKind.DISK_FULL,
            1,
            f"disk use {current.disk_used // _MIB} MiB reached the limit of "
            f"{_disk_limit(current, limits) // _MIB} MiB",
        )
    return events
