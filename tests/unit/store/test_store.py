"""Both `Store` implementations behave the same; SQLite also persists and versions."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from corral.model import Limits, SandboxRecord, SandboxState
from corral.store import (
    SCHEMA_VERSION,
    DuplicateSandbox,
    MemoryStore,
    SchemaMismatch,
    SqliteStore,
    Store,
    UnknownSandbox,
)

RECORD = SandboxRecord(
    sandbox_id="a" * 20,
    template_id="base",
    alias=None,
    state=SandboxState.STARTING,
    access_token="secret",
    uid_base=165536,
    started_at=1700000000.25,
    end_at=1700000300.5,
    limits=Limits(cpu_count=1, memory_mb=256, pids_max=64, disk_mb=512),
    env_vars={"A": "1", "ü": "ß"},
    metadata={"k": "v w"},
)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore()
    if request.param == "sqlite":
        made = SqliteStore(tmp_path / "corral.db")
    yield made
    made.close()


def test_round_trip(store: Store) -> None:
    store.insert(RECORD)
    assert store.get(RECORD.sandbox_id) == RECORD
    running = replace(RECORD, state=SandboxState.RUNNING, agent_pid=42, alias="base")
    store.update(running)
    assert store.get(RECORD.sandbox_id) == running
    assert store.all() == [running]
    assert store.delete(RECORD.sandbox_id) is True
    assert store.delete(RECORD.sandbox_id) is False
    assert store.get(RECORD.sandbox_id) is None


def test_duplicate_and_unknown(store: Store) -> None:
    store.insert(RECORD)
    with pytest.raises(DuplicateSandbox):
        store.insert(RECORD)
    with pytest.raises(UnknownSandbox):
        store.update(replace(RECORD, sandbox_id="b" * 20))


def test_all_is_oldest_first(store: Store) -> None:
    later = replace(RECORD, sandbox_id="b" * 20, started_at=RECORD.started_at + 1)
    earlier = replace(RECORD, sandbox_id="c" * 20, started_at=RECORD.started_at - 1)
    for record in (later, RECORD, earlier):
        store.insert(record)
    assert [r.sandbox_id for r in store.all()] == ["c" * 20, "a" * 20, "b" * 20]


def test_sqlite_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "corral.db"
    first = SqliteStore(path)
    first.insert(RECORD)
    first.close()
    second = SqliteStore(path)
    assert second.all() == [RECORD]
    second.close()


def test_sqlite_file_is_private_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    store = SqliteStore(path)
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaMismatch, match="schema version"):
        SqliteStore(path)
