"""`MemoryStore`: a dict-backed `Store` for unit tests (nothing survives the process)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from corral.model import SandboxRecord
from corral.store.base import DuplicateSandbox, UnknownSandbox
from corral.store.connections import CONNECTIONS_PER_SANDBOX, ConnectionEntry, FlowEnd, Verdict
from corral.store.events import EVENTS_PER_SANDBOX, LimitEvent

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps rows in a dict, with the same semantics as `SqliteStore`."""

    def __init__(self) -> None:
        self._rows: dict[str, SandboxRecord] = {}
        self._events: dict[str, list[LimitEvent]] = {}
        self._connections: dict[str, list[ConnectionEntry]] = {}

    def insert(self, record: SandboxRecord) -> None:
        if record.sandbox_id in self._rows:
            raise DuplicateSandbox(f"sandbox {record.sandbox_id} already has a row")
        self._rows[record.sandbox_id] = record

    def update(self, record: SandboxRecord) -> None:
        if record.sandbox_id not in self._rows:
            raise UnknownSandbox(f"sandbox {record.sandbox_id} has no row")
        self._rows[record.sandbox_id] = record

    def delete(self, sandbox_id: str) -> bool:
        return self._rows.pop(sandbox_id, None) is not None

    def get(self, sandbox_id: str) -> SandboxRecord | None:
        return self._rows.get(sandbox_id)

    def all(self) -> list[SandboxRecord]:
        return sorted(self._rows.values(), key=lambda r: (r.started_at, r.sandbox_id))

    def add_limit_events(self, events: Sequence[LimitEvent]) -> None:
        for event in events:
            kept = self._events.setdefault(event.sandbox_id, [])
            kept.append(event)
            del kept[:-EVENTS_PER_SANDBOX]

    def limit_events(self, sandbox_id: str) -> list[LimitEvent]:
        return sorted(self._events.get(sandbox_id, ()), key=lambda e: e.timestamp)

    def prune_limit_events(self, before: float) -> int:
        deleted = 0
        for sandbox_id, kept in list(self._events.items()):
            fresh = [e for e in kept if e.timestamp >= before]
            deleted += len(kept) - len(fresh)
            if fresh:
                self._events[sandbox_id] = fresh
            else:
                del self._events[sandbox_id]
        return deleted

    def add_connections(self, entries: Sequence[ConnectionEntry]) -> None:
        for entry in entries:
            kept = self._connections.setdefault(entry.sandbox_id, [])
            kept.append(entry)
            del kept[:-CONNECTIONS_PER_SANDBOX]

    def end_connections(self, ends: Sequence[FlowEnd]) -> None:
        for end in ends:
            kept = self._connections.get(end.sandbox_id, [])
            flow = (end.protocol, end.destination, end.port, end.source_port)
            index = next(
                (
                    i
                    for i in range(len(kept) - 1, -1, -1)
                    if (kept[i].protocol, kept[i].destination, kept[i].port, kept[i].source_port)
                    == flow
                ),
                None,
            )
            if index is None:
                self.add_connections([end.as_entry()])
            elif kept[index].ended_at is None:
                kept[index] = replace(
                    kept[index],
                    bytes_sent=end.bytes_sent,
                    bytes_received=end.bytes_received,
                    ended_at=end.ended_at,
                )

    def connections(
        self, sandbox_id: str, limit: int, verdict: Verdict | None = None
    ) -> list[ConnectionEntry]:
        kept = self._connections.get(sandbox_id, [])
        chosen = [e for e in kept if verdict is None or e.verdict is verdict]
        return chosen[-limit:] if limit > 0 else []

    def prune_connections(self, before: float) -> int:
        deleted = 0
        for sandbox_id, kept in list(self._connections.items()):
            fresh = [e for e in kept if e.timestamp >= before]
            deleted += len(kept) - len(fresh)
            if fresh:
                self._connections[sandbox_id] = fresh
            else:
                del self._connections[sandbox_id]
        return deleted

    def close(self) -> None:
        self._rows.clear()
        self._events.clear()
        self._connections.clear()
