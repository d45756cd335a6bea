"""Telemetry: samples become metrics (cpu % over the gap), grown counters become events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from corral.model import Limits
from corral.orchestrator import CreateSandbox, Orchestrator, OrchestratorSettings, SandboxNotFound
from corral.orchestrator.telemetry import Telemetry, detect_limit_events
from corral.runtime import LiveSandbox, UsageSample
from corral.store import EVENTS_PER_SANDBOX, LimitEvent, LimitKind, MemoryStore, SqliteStore

from .fakes import MemoryRuntime, StaticTemplates

SID = "t" * 20
MIB = 1024 * 1024
LIMITS = Limits(cpu_count=2, memory_mb=256, pids_max=64, disk_mb=100)
ZERO = UsageSample(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime() -> MemoryRuntime:
    runtime = MemoryRuntime()
    runtime.running[SID] = LiveSandbox(SID, "/nonexistent", 1)
    return runtime


@pytest.fixture
async def telemetry(
    runtime: MemoryRuntime, store: MemoryStore, clock: Clock
) -> AsyncIterator[Telemetry]:
    made = Telemetry(runtime, store, interval=3600, history_s=3600 * 5, clock=clock)
    yield made
    await made.close()


async def test_first_sample_is_there_right_after_track(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock
) -> None:
    runtime.usages[SID] = replace(ZERO, cpu_usage_ns=10**9, memory_used=5 * MIB)
    telemetry.track(SID, LIMITS, started_at=clock.now - 1)
    [first] = await telemetry.metrics(SID)  # waits for the first sample
    assert first.timestamp == clock.now
    assert first.cpu_count == 2
    assert first.cpu_used_pct == 50.0  # 1 s of CPU in 1 s of wall on 2 CPUs
    assert (first.mem_used, first.mem_total) == (5 * MIB, 256 * MIB)  # limit from the record
    assert first.disk_total == 100 * MIB


async def test_first_sample_lets_the_clients_first_requests_go_first(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock
) -> None:
    telemetry.track(SID, LIMITS, started_at=clock.now)
    for _ in range(5):
        await asyncio.sleep(0)  # a sample taken at once would read the usage before the change
    runtime.usages[SID] = replace(ZERO, memory_used=7 * MIB)
    [first] = await telemetry.metrics(SID)
    assert first.mem_used == 7 * MIB


async def test_first_sample_is_taken_without_a_query(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("corral.orchestrator.telemetry._FIRST_SAMPLE_DELAY_S", 0.01)
    runtime.usages[SID] = replace(ZERO, memory_used=3 * MIB)
    telemetry.track(SID, LIMITS, started_at=clock.now)
    await asyncio.sleep(0.2)
    runtime.usages[SID] = replace(ZERO, memory_used=9 * MIB)
    [first] = await telemetry.metrics(SID)
    assert first.mem_used == 3 * MIB


async def test_cpu_percent_is_over_the_gap_and_levels_come_from_the_sample(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock
) -> None:
    telemetry.track(SID, LIMITS, started_at=clock.now)
    await telemetry.metrics(SID)
    clock.now += 10
    runtime.usages[SID] = UsageSample(
        cpu_usage_ns=5 * 10**9,
        memory_used=7,
        memory_cache=3,
        memory_limit=128 * MIB,
        disk_used=11,
        disk_limit=50 * MIB,
        oom_kills=0,
        pids_max_hits=0,
        throttled_periods=0,
        throttled_ns=0,
    )
    await telemetry.sample_all()
    clock.now += 10
    runtime.usages[SID] = replace(runtime.usages[SID], cpu_usage_ns=25 * 10**9)
    await telemetry.sample_all()
    series = await telemetry.metrics(SID)
    assert [m.cpu_used_pct for m in series] == [0.0, 25.0, 100.0]
    assert (series[1].mem_used, series[1].mem_cache, series[1].mem_total) == (7, 3, 128 * MIB)
    assert (series[1].disk_used, series[1].disk_total) == (11, 50 * MIB)


async def test_window_filters_by_unix_second(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock
) -> None:
    start = int(clock.now)
    telemetry.track(SID, LIMITS, started_at=clock.now)
    await telemetry.metrics(SID)  # the first sample, now
    for _ in range(4):
        await telemetry.sample_all()
        clock.now += 5
    times = [int(m.timestamp) for m in await telemetry.metrics(SID)]
    assert times == [start, start, start + 5, start + 10, start + 15]
    assert await telemetry.metrics(SID, start - 100, start - 1) == []  # before it existed
    window = await telemetry.metrics(SID, start + 5, start + 10)
    assert [int(m.timestamp) for m in window] == [start + 5, start + 10]
    assert len(await telemetry.metrics(SID, start=start + 11)) == 1


async def test_history_is_bounded(runtime: MemoryRuntime, store: MemoryStore, clock: Clock) -> None:
    telemetry = Telemetry(runtime, store, interval=5, history_s=20, clock=clock)
    telemetry.track(SID, LIMITS, started_at=clock.now)
    for _ in range(10):
        await telemetry.sample_all()
        clock.now += 1
    assert len(await telemetry.metrics(SID)) == 4
    await telemetry.close()


async def test_unknown_and_forgotten_sandboxes_are_not_found(
    telemetry: Telemetry, clock: Clock
) -> None:
    with pytest.raises(SandboxNotFound):
        await telemetry.metrics(SID)
    telemetry.track(SID, LIMITS, started_at=clock.now)
    assert len(await telemetry.metrics(SID)) == 1
    assert telemetry.events(SID) == []  # running: an empty list, not a 404
    telemetry.forget(SID)
    with pytest.raises(SandboxNotFound):
        await telemetry.metrics(SID)
    with pytest.raises(SandboxNotFound):
        telemetry.events(SID)
    assert await telemetry.latest([SID, "x" * 20]) == {}


async def test_a_sandbox_gone_from_the_runtime_adds_no_sample(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock
) -> None:
    telemetry.track(SID, LIMITS, started_at=clock.now)
    await telemetry.metrics(SID)
    runtime.running.clear()
    await telemetry.sample_all()
    assert len(await telemetry.metrics(SID)) == 1


async def test_grown_counters_become_events_in_the_store(
    telemetry: Telemetry, runtime: MemoryRuntime, store: MemoryStore, clock: Clock
) -> None:
    telemetry.track(SID, LIMITS, started_at=clock.now)
    await telemetry.metrics(SID)
    clock.now += 5
    runtime.usages[SID] = replace(ZERO, oom_kills=2, pids_max_hits=30, throttled_periods=7)
    await telemetry.sample_all()
    clock.now += 5
    await telemetry.sample_all()  # nothing grew: nothing new
    clock.now += 5
    runtime.usages[SID] = replace(runtime.usages[SID], oom_kills=3)
    await telemetry.sample_all()
    events = telemetry.events(SID)
    assert [(e.kind, e.count) for e in events] == [
        (LimitKind.OOM_KILL, 2),
        (LimitKind.PIDS_MAX, 30),
        (LimitKind.CPU_THROTTLED, 7),
        (LimitKind.OOM_KILL, 1),
    ]
    assert events == store.limit_events(SID)
    assert events[0].timestamp == clock.now - 10
    telemetry.forget(SID)
    assert telemetry.events(SID) == events  # kept after the sandbox is gone


async def test_an_adopted_sandbox_reports_only_hits_after_its_first_sample(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock
) -> None:
    runtime.usages[SID] = replace(ZERO, oom_kills=4)  # from before the restart
    telemetry.track(SID, LIMITS, started_at=clock.now - 100, adopted=True)
    await telemetry.metrics(SID)
    assert telemetry.events(SID) == []
    runtime.usages[SID] = replace(ZERO, oom_kills=5)
    await telemetry.sample_all()
    assert [(e.kind, e.count) for e in telemetry.events(SID)] == [(LimitKind.OOM_KILL, 1)]


async def test_a_fresh_sandbox_reports_hits_before_its_first_sample(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock
) -> None:
    runtime.usages[SID] = replace(ZERO, pids_max_hits=1)
    telemetry.track(SID, LIMITS, started_at=clock.now)
    await telemetry.metrics(SID)
    assert [e.kind for e in telemetry.events(SID)] == [LimitKind.PIDS_MAX]


async def test_disk_full_is_reported_once_per_filling(
    telemetry: Telemetry, runtime: MemoryRuntime, clock: Clock
) -> None:
    telemetry.track(SID, LIMITS, started_at=clock.now)
    for used in (50 * MIB, 100 * MIB, 120 * MIB, 10 * MIB, 100 * MIB):
        runtime.usages[SID] = replace(ZERO, disk_used=used)
        await telemetry.sample_all()
    events = telemetry.events(SID)
    assert [(e.kind, e.count) for e in events] == [(LimitKind.DISK_FULL, 1)] * 2
    assert events[0].detail == "disk use 100 MiB reached the limit of 100 MiB"


def test_event_details_name_the_limit() -> None:
    now = 1.0
    previous = replace(ZERO, oom_kills=1, throttled_periods=1, throttled_ns=10**6)
    current = UsageSample(0, 0, 0, 512 * MIB, 0, 0, 3, 2, 5, 41 * 10**6)
    details = {e.kind: e.detail for e in detect_limit_events(SID, LIMITS, previous, current, now)}
    assert details == {
        LimitKind.OOM_KILL: "2 process(es) killed by the out-of-memory killer at the memory "
        "limit of 512 MiB",
        LimitKind.PIDS_MAX: "2 fork(s) refused at the limit of 64 processes",
        LimitKind.CPU_THROTTLED: "throttled in 4 scheduler period(s), 40 ms in all, at the "
        "limit of 2 CPU(s)",
    }
    # a counter that went backwards (never expected) is no event
    assert detect_limit_events(SID, LIMITS, current, previous, now) == []


async def test_the_sampler_runs_every_interval(runtime: MemoryRuntime, store: MemoryStore) -> None:
    telemetry = Telemetry(runtime, store, interval=0.01)
    telemetry.open()
    telemetry.track(SID, LIMITS, started_at=0)
    try:
        for _ in range(500):
            if len(await telemetry.metrics(SID)) >= 3:
                break
            await asyncio.sleep(0.01)
        assert len(await telemetry.metrics(SID)) >= 3
    finally:
        await telemetry.close()


async def test_the_orchestrator_tracks_created_sandboxes_and_forgets_killed_ones(
    store: MemoryStore,
) -> None:
    runtime = MemoryRuntime()
    settings = OrchestratorSettings(metrics_interval=0.01)
    orchestrator = Orchestrator(runtime, store, StaticTemplates(), settings)
    await orchestrator.start()
    try:
        record = await orchestrator.create(CreateSandbox(template="base"))
        sandbox_id = record.sandbox_id
        assert len(await orchestrator.telemetry.metrics(sandbox_id)) >= 1
        runtime.usages[sandbox_id] = replace(ZERO, oom_kills=1)
        for _ in range(500):
            if orchestrator.telemetry.events(sandbox_id):
                break
            await asyncio.sleep(0.01)
        [event] = orchestrator.telemetry.events(sandbox_id)
        assert event.kind is LimitKind.OOM_KILL
        await orchestrator.kill(sandbox_id)
        with pytest.raises(SandboxNotFound):
            await orchestrator.telemetry.metrics(sandbox_id)
        assert orchestrator.telemetry.events(sandbox_id) == [event]
    finally:
        await orchestrator.close()


def _event(n: int, sandbox_id: str = SID) -> LimitEvent:
    return LimitEvent(sandbox_id, 1000.0 + n, LimitKind.PIDS_MAX, f"hit {n}", n)


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_store_keeps_the_newest_events_per_sandbox_and_prunes_by_age(
    backend: str, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "corral.db") if backend == "sqlite" else MemoryStore()
    other = "o" * 20
    store.add_limit_events([_event(n) for n in range(EVENTS_PER_SANDBOX + 5)])
    store.add_limit_events([_event(1, other)])
    kept = store.limit_events(SID)
    assert len(kept) == EVENTS_PER_SANDBOX
    assert kept[0] == _event(5) and kept[-1] == _event(EVENTS_PER_SANDBOX + 4)
    assert store.limit_events(other) == [_event(1, other)]
    assert store.prune_limit_events(before=1000.0 + 10) == 6  # 5..9 of SID, 1 of other
    assert store.limit_events(other) == []
    assert store.limit_events(SID)[0] == _event(10)
    store.close()


def test_sqlite_events_survive_a_restart_and_old_files_gain_the_table(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    store = SqliteStore(path)
    store.add_limit_events([_event(1)])
    store.close()
    reopened = SqliteStore(path)
    assert reopened.limit_events(SID) == [_event(1)]
    reopened._db.execute("DROP TABLE limit_events")  # a file written before the table existed
    reopened.close()
    upgraded = SqliteStore(path)
    assert upgraded.limit_events(SID) == []
    upgraded.add_limit_events([_event(2)])
    assert upgraded.limit_events(SID) == [_event(2)]
    upgraded.close()
