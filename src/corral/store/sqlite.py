"""`SqliteStore`: the embedded default store (stdlib `sqlite3`, WAL, `synchronous=NORMAL`).

Table `sandboxes` holds one row per sandbox; `limit_events` the limit events of sandboxes
and `connections` their connection-log entries, including those of removed sandboxes
(capped per sandbox, pruned by age). The schema version lives in
`PRAGMA user_version`; opening a database written by a newer schema raises `SchemaMismatch`
instead of guessing. Tables added later without changing existing ones (`limit_events`,
`connections`) are made with `CREATE TABLE IF NOT EXISTS` at every open, so older files gain
them and keep their version. The file holds access tokens, so it is created mode 0600.

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

from corral.model import Limits, SandboxRecord, SandboxState, policy_from_json, policy_to_json
from corral.store.base import DuplicateSandbox, SchemaMismatch, StoreError, UnknownSandbox
from corral.store.connections import CONNECTIONS_PER_SANDBOX, ConnectionEntry, FlowEnd, Verdict
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
    agent_pid    INTEGER,
    network      TEXT,
    traffic_access_token TEXT
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
    """
    CREATE TABLE IF NOT EXISTS connections (
        id             INTEGER PRIMARY KEY,
        sandbox_id     TEXT NOT NULL,
        timestamp      REAL NOT NULL,
        protocol       TEXT NOT NULL,
        destination    TEXT NOT NULL,
        port           INTEGER,
        verdict        TEXT NOT NULL,
        reason         TEXT NOT NULL,
        name           TEXT,
        source_port    INTEGER,
        bytes_sent     INTEGER,
        bytes_received INTEGER,
        ended_at       REAL
    )
    """,
    "CREATE INDEX IF NOT EXISTS connections_of_sandbox ON connections (sandbox_id, id)",
    "CREATE INDEX IF NOT EXISTS connections_by_time ON connections (timestamp)",
)

_CONNECTION_COLUMNS = (
    "sandbox_id, timestamp, protocol, destination, port, verdict, reason, name, source_port, "
    "bytes_sent, bytes_received, ended_at"
)
_CONNECTION_SLOTS = ",".join("?" * len(_CONNECTION_COLUMNS.split(",")))

_COLUMNS = (
    "sandbox_id, template_id, alias, state, access_token, uid_base, started_at, end_at, "
    "limits, env_vars, metadata, agent_pid, network, traffic_access_token"
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
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(sandboxes)")}
            if "network" not in columns:  # added after version 1: older files gain it
                self._db.execute("ALTER TABLE sandboxes ADD COLUMN network TEXT")
            if "traffic_access_token" not in columns:  # likewise
                self._db.execute("ALTER TABLE sandboxes ADD COLUMN traffic_access_token TEXT")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def insert(self, record: SandboxRecord) -> None:
        try:
            self._db.execute(
                f"INSERT INTO sandboxes ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                "agent_pid=?, network=?, traffic_access_token=? WHERE sandbox_id=?",
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

    def add_connections(self, entries: Sequence[ConnectionEntry]) -> None:
        try:
            with self._transaction():
                self._db.executemany(
                    f"INSERT INTO connections ({_CONNECTION_COLUMNS}) VALUES ({_CONNECTION_SLOTS})",
                    [_connection_row(e) for e in entries],
                )
                self._cap_connections({e.sandbox_id for e in entries})
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record connections: {exc}") from exc

    def end_connections(self, ends: Sequence[FlowEnd]) -> None:
        try:
            with self._transaction():
                unmatched = []
                for end in ends:
                    newest = self._db.execute(
                        "SELECT id, ended_at FROM connections WHERE sandbox_id=? "
                        "AND protocol=? AND destination=? AND port IS ? AND source_port IS ? "
                        "ORDER BY id DESC LIMIT 1",
                        (end.sandbox_id, end.protocol, end.destination, end.port, end.source_port),
                    ).fetchone()
                    if newest is None:
                        unmatched.append(end.as_entry())
                    elif newest[1] is None:
                        self._db.execute(
                            "UPDATE connections SET bytes_sent=?, bytes_received=?, ended_at=? "
                            "WHERE id=?",
                            (end.bytes_sent, end.bytes_received, end.ended_at, newest[0]),
                        )
                self._db.executemany(
                    f"INSERT INTO connections ({_CONNECTION_COLUMNS}) VALUES ({_CONNECTION_SLOTS})",
                    [_connection_row(e) for e in unmatched],
                )
                self._cap_connections({e.sandbox_id for e in unmatched})
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record ended connections: {exc}") from exc

    def _cap_connections(self, sandbox_ids: set[str]) -> None:
        for sandbox_id in sandbox_ids:
            self._db.execute(
                "DELETE FROM connections WHERE sandbox_id=? AND id <= ("
                "SELECT id FROM connections WHERE sandbox_id=? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (sandbox_id, sandbox_id, CONNECTIONS_PER_SANDBOX),
            )

    def connections(
        self, sandbox_id: str, limit: int, verdict: Verdict | None = None
    ) -> list[ConnectionEntry]:
        where = "sandbox_id=?" if verdict is None else "sandbox_id=? AND verdict=?"
        args: tuple[Any, ...] = (sandbox_id,) if verdict is None else (sandbox_id, verdict.value)
        try:
            rows = self._db.execute(
                f"SELECT {_CONNECTION_COLUMNS} FROM connections WHERE {where} "
                "ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read connections of sandbox {sandbox_id}: {exc}") from exc
        known = {v.value: v for v in Verdict}
        return [
            _connection_from_row(row, known[row[5]])
            for row in reversed(rows)
            if row[5] in known  # a newer corral may record verdicts this one does not know
        ]

    def prune_connections(self, before: float) -> int:
        try:
            cursor = self._db.execute("DELETE FROM connections WHERE timestamp < ?", (before,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prune connections: {exc}") from exc
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


def _connection_row(e: ConnectionEntry) -> tuple[Any, ...]:
    return (
        e.sandbox_id,
        e.timestamp,
        e.protocol,
        e.destination,
        e.port,
        e.verdict.value,
        e.reason,
        e.name,
        e.source_port,
        e.bytes_sent,
        e.bytes_received,
        e.ended_at,
    )


def _connection_from_row(row: tuple[Any, ...], verdict: Verdict) -> ConnectionEntry:
    sandbox_id, ts, protocol, destination, port, _, reason, name, sport, sent, got, ended = row
    return ConnectionEntry(
        sandbox_id=sandbox_id,
        timestamp=float(ts),
        protocol=protocol,
        destination=destination,
        port=port,
        verdict=verdict,
        reason=reason,
        name=name,
        source_port=sport,
        bytes_sent=sent,
        bytes_received=got,
        ended_at=None if ended is None else float(ended),
    )


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
        policy_to_json(record.network),
        record.traffic_access_token,
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
        network,
        traffic_token,
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
        network=policy_from_json(network),
        traffic_access_token=traffic_token,
    )
