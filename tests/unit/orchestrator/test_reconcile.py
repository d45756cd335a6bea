"""Start-up reconciliation after a simulated crash, against a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from corral.model import Limits, SandboxRecord, SandboxState
from corral.orchestrator import CreateSandbox, Orchestrator, OrchestratorSettings, SandboxNotFound
from corral.orchestrator.reconcile import plan_reconciliation
from corral.runtime import LiveSandbox
from corral.store import SqliteStore

from .fakes import MemoryRuntime, StaticTemplates


def _row(sandbox_id: str, slot: int, **changes: object) -> SandboxRecord:
    record = SandboxRecord(
        sandbox_id=sandbox_id,
        template_id="base-id",
        alias="base",
        state=SandboxState.RUNNING,
        access_token=f"tok-{sandbox_id}",
        uid_base=100000 + slot * 65536,
        started_at=time.time() - 10,
        end_at=time.time() + 600,
        limits=Limits(),
        env_vars={},
        metadata={"n": sandbox_id},
        agent_pid=1,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def _live(sandbox_id: str, pid: int = 4242) -> LiveSandbox:
    return LiveSandbox(sandbox_id, f"/run/{sandbox_id}.sock", pid)


def test_plan_covers_every_case() -> None:
    now = time.time()
    rows = [
        _row("adopt", 0),
        _row("norow-sandbox-missing", 1),
        _row("expired", 2, end_at=now - 1),
        _row("starting", 3, state=SandboxState.STARTING),
        _row("stopping", 4, state=SandboxState.STOPPING),
        _row("badslot", 5, uid_base=12345),
        _row("dupslot", 0),
    ]
    live = [_live(i) for i in ("adopt", "expired", "starting", "stopping", "badslot", "dupslot")]
    live.append(_live("orphan"))
    plan = plan_reconciliation(rows, live, now, capacity=100)
    assert [a.record.sandbox_id for a in plan.adopt] == ["adopt"]
    assert set(plan.stop) == {"expired", "starting", "stopping", "badslot", "dupslot", "orphan"}
    assert set(plan.delete_rows) == {
        "norow-sandbox-missing",
        "expired",
        "starting",
        "stopping",
        "badslot",
        "dupslot",
    }


def test_plan_refuses_slots_beyond_capacity() -> None:
    plan = plan_reconciliation([_row("big", 7)], [_live("big")], time.time(), capacity=4)
    assert plan.adopt == () and plan.stop == ("big",)


async def test_crash_recovery_with_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "corral.db"
    runtime = MemoryRuntime()
    settings = OrchestratorSettings(max_sandboxes=8)

    # A first server creates sandboxes, then "crashes" (no close()).
    first = Orchestrator(runtime, SqliteStore(db), StaticTemplates(), settings)
    await first.start()
    survivor = await first.create(CreateSandbox(template="base", metadata={"keep": "1"}))
    vanished = await first.create(CreateSandbox(template="base"))
    expired = await first.create(CreateSandbox(template="base"))
    first._deadlines.cancel_all()  # the crashed process's timers die with it
    del runtime.running[vanished.sandbox_id]  # its sandbox died with the host process
    store = SqliteStore(db)
    expired_row = store.get(expired.sandbox_id)
    assert expired_row is not None
    store.update(replace(expired_row, end_at=time.time() - 1))
    store.close()
    runtime.running["orphan0000000000000"] = _live("orphan0000000000000")  # no row
    runtime.leftovers = {"leftover000000000000"}

    second_store = SqliteStore(db)
    second = Orchestrator(runtime, second_store, StaticTemplates(), settings)
    report = await second.start()

    assert report.adopted == (survivor.sandbox_id,)
    assert set(report.stopped) == {expired.sandbox_id, "orphan0000000000000"}
    assert set(report.rows_deleted) == {vanished.sandbox_id, expired.sandbox_id}
    assert report.swept == ("leftover000000000000",)
    assert runtime.swept_keep == [set(), {survivor.sandbox_id}]
    assert [r.sandbox_id for r in second_store.all()] == [survivor.sandbox_id]
    adopted = second.get(survivor.sandbox_id)
    assert adopted.metadata == {"keep": "1"} and adopted.end_at == survivor.end_at
    assert second.find_route(survivor.sandbox_id) is not None
    with pytest.raises(SandboxNotFound):
        second.get(vanished.sandbox_id)
    # The adopted sandbox's uid slot is taken: a new sandbox gets another one.
    fresh = await second.create(CreateSandbox(template="base"))
    assert fresh.uid_base != survivor.uid_base
    assert "re-adopted 1" in report.summary()
    await second.close()
    assert runtime.running == {}


async def test_adopted_sandbox_still_expires(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    store = SqliteStore(tmp_path / "corral.db")
    store.insert(_row("soon", 0, end_at=time.time() + 0.05))
    runtime.running["soon"] = _live("soon")
    orch = Orchestrator(runtime, store, StaticTemplates(), OrchestratorSettings())
    report = await orch.start()
    assert report.adopted == ("soon",)
    assert store.get("soon").agent_pid == 4242  # type: ignore[union-attr]
    for _ in range(200):
        if "soon" in runtime.stopped:
            break
        await asyncio.sleep(0.01)
    assert "soon" in runtime.stopped and store.get("soon") is None
    await orch.close()
