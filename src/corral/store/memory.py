"""`MemoryStore`: a dict-backed `Store` for unit tests (nothing survives the process)."""

from __future__ import annotations

from collections.abc import Sequence

from corral.model import SandboxRecord
from corral.store.base import DuplicateSandbox, UnknownSandbox
from corral.store.events import EVENTS_PER_SANDBOX, LimitEvent

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps rows in a dict, with the same semantics as `SqliteStore`."""

    def __init__(self) -> None:
        self._rows: dict[str, SandboxRecord] = {}
        self._events: dict[str, list[LimitEvent]] = {}

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

    def close(self) -> None:
        self._rows.clear()
        self._events.clear()
