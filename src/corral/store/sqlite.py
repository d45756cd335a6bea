"""`SqliteStore`: the embedded default store (stdlib `sqlite3`, WAL, `synchronous=NORMAL`).

Table `sandboxes` holds one row per sandbox; `limit_events` the limit events of sandboxes,
including removed ones (capped per sandbox, pruned by age). The schema version lives in
`PRAGMA user_version`; opening a database written by a newer schema raises `SchemaMismatch`
instead of guessing. Tables added later without changing existing ones (`limit_events`) are
made with `CREATE TABLE IF NOT EXISTS` at every open, so older files gain them and keep
their version. The file holds access tokens, so it is created mode 0600.

WAL with `synchronous=NORMAL` keeps a committed row across a process crash (only an OS
crash can lose the last transactions), at a few tens of microseconds per write.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.model import Limits, SandboxRecord, SandboxState
from corral.store.base import DuplicateSandbox, SchemaMismatch, StoreError, UnknownSandbox
from corral.store.events import EVENTS_PER_SANDBOX, LimitEvent, LimitKind

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE sandboxes (
    sandbox_id   TEXT PRIMARY KEY,
    template_id  TEXT NOT NULL,
    alias        TEXT,
    state        TEXT NOT NULL,
    access_token TEXT NOT NULL,
    uid_base     INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    end_at       REAL NOT NULL,
    limits       TEXT NOT NULL,
    env_vars     TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    agent_pid    INTEGER
) WITHOUT ROWID
"""

_ADDED_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS limit_events (
        id         INTEGER PRIMARY KEY,
        sandbox_id TEXT NOT NULL,
        timestamp  REAL NOT NULL,
        kind       TEXT NOT NULL,
        detail     TEXT NOT NULL,
        count      INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS limit_events_of_sandbox ON limit_events (sandbox_id, id)",
    "CREATE INDEX IF NOT EXISTS limit_events_by_time ON limit_events (timestamp)",
)

_COLUMNS = (
    "sandbox_id, template_id, alias, state, access_token, uid_base, started_at, end_at, "
    "limits, env_vars, metadata, agent_pid"
)


class SqliteStore:
    """Sandbox rows in one SQLite file. Use from one thread at a time (the event loop)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            # check_same_thread=False: test clients may drive the loop from another thread;
            # calls are still serialised by the single event loop.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state database {path}: {exc}") from exc

    @property
    def path(self) -> Path:
        return self._path

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version not in (0, SCHEMA_VERSION):
            raise SchemaMismatch(
                f"state database {self._path} has schema version {version}; "
                f"this corral reads version {SCHEMA_VERSION}"
            )
        with self._transaction():
            if version == 0:
                self._db.execute(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            for statement in _ADDED_TABLES:
                self._db.execute(statement)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def insert(self, record: SandboxRecord) -> None:
        try:
            self._db.execute(
                f"INSERT INTO sandboxes ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                _to_row(record),
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateSandbox(f"sandbox {record.sandbox_id} already has a row") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"cannot insert sandbox {record.sandbox_id}: {exc}") from exc

    def update(self, record: SandboxRecord) -> None:
        row = _to_row(record)
        try:
            cursor = self._db.execute(
                "UPDATE sandboxes SET template_id=?, alias=?, state=?, access_token=?, "
                "uid_base=?, started_at=?, end_at=?, limits=?, env_vars=?, metadata=?, "
                "agent_pid=? WHERE sandbox_id=?",
                (*row[1:], row[0]),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot update sandbox {record.sandbox_id}: {exc}") from exc
        if cursor.rowcount == 0:
            raise UnknownSandbox(f"sandbox {record.sandbox_id} has no row")

    def delete(self, sandbox_id: str) -> bool:
        try:
            cursor = self._db.execute("DELETE FROM sandboxes WHERE sandbox_id=?", (sandbox_id,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete sandbox {sandbox_id}: {exc}") from exc
        return cursor.rowcount > 0

    def get(self, sandbox_id: str) -> SandboxRecord | None:
        try:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM sandboxes WHERE sandbox_id=?", (sandbox_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read sandbox {sandbox_id}: {exc}") from exc
        return None if row is None else _from_row(row)

    def all(self) -> list[SandboxRecord]:
        try:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM sandboxes ORDER BY started_at, sandbox_id"
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read sandboxes: {exc}") from exc
        return [_from_row(row) for row in rows]

    def add_limit_events(self, events: Sequence[LimitEvent]) -> None:
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO limit_events (sandbox_id, timestamp, kind, detail, count) "
                    "VALUES (?,?,?,?,?)",
                    [(e.sandbox_id, e.timestamp, e.kind.value, e.detail, e.count) for e in events],
                )
                for sandbox_id in {e.sandbox_id for e in events}:
                    self._db.execute(
                        "DELETE FROM limit_events WHERE sandbox_id=? AND id <= ("
                        "SELECT id FROM limit_events WHERE sandbox_id=? "
                        "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        (sandbox_id, sandbox_id, EVENTS_PER_SANDBOX),
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record limit events: {exc}") from exc

    def limit_events(self, sandbox_id: str) -> list[LimitEvent]:
        try:
            rows = self._db.execute(
                "SELECT timestamp, kind, detail, count FROM limit_events WHERE sandbox_id=? "
                "ORDER BY timestamp, id",
                (sandbox_id,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read limit events of sandbox {sandbox_id}: {exc}") from exc
        known = {kind.value: kind for kind in LimitKind}
        return [
            LimitEvent(sandbox_id, float(ts), known[kind], detail, int(count))
            for ts, kind, detail, count in rows
            if kind in known  # a newer corral may record kinds this one does not know
        ]

    def prune_limit_events(self, before: float) -> int:
        try:
            cursor = self._db.execute("DELETE FROM limit_events WHERE timestamp < ?", (before,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prune limit events: {exc}") from exc
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _to_row(record: SandboxRecord) -> tuple[Any, ...]:
    limits = record.limits
    return (
        record.sandbox_id,
        record.template_id,
        record.alias,
        record.state.value,
        record.access_token,
        record.uid_base,
        record.started_at,
        record.end_at,
        json.dumps(
            {
                "cpu_count": limits.cpu_count,
                "memory_mb": limits.memory_mb,
                "pids_max": limits.pids_max,
                "disk_mb": limits.disk_mb,
                "open_files": limits.open_files,
            }
        ),
        json.dumps(dict(record.env_vars)),
        json.dumps(dict(record.metadata)),
        record.agent_pid,
    )


def _from_row(row: tuple[Any, ...]) -> SandboxRecord:
    (
        sandbox_id,
        template_id,
        alias,
        state,
        token,
        uid_base,
        started,
        end,
        limits,
        env,
        meta,
        pid,
    ) = row
    raw_limits: Mapping[str, int] = json.loads(limits)  # older rows lack open_files: default
    return SandboxRecord(
        sandbox_id=sandbox_id,
        template_id=template_id,
        alias=alias,
        state=SandboxState(state),
        access_token=token,
        uid_base=int(uid_base),
        started_at=float(started),
        end_at=float(end),
        limits=Limits(**raw_limits),
        env_vars=json.loads(env),
        metadata=json.loads(meta),
        agent_pid=None if pid is None else int(pid),
    )
