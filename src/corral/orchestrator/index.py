"""The in-memory index of running sandboxes: the hot path never touches the store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from corral.model import SandboxRecord

__all__ = ["LiveIndex", "SandboxRoute"]


@dataclass(frozen=True)
class SandboxRoute:
    """Where the data plane reaches a running sandbox's agent, and its secret."""

    sandbox_id: str
    agent_socket: str
    access_token: str
    traffic_access_token: str | None = None


@dataclass(frozen=True)
class _Entry:
    record: SandboxRecord
    route: SandboxRoute
    slot: int


class LiveIndex:
    """Running sandboxes by id. Removing an entry makes the sandbox invisible everywhere."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, sandbox_id: object) -> bool:
        return sandbox_id in self._entries

    def add(self, record: SandboxRecord, agent_socket: str, slot: int) -> None:
        route = SandboxRoute(
            record.sandbox_id, agent_socket, record.access_token, record.traffic_access_token
        )
        self._entries[record.sandbox_id] = _Entry(record, route, slot)

    def replace_record(self, record: SandboxRecord) -> None:
        entry = self._entries[record.sandbox_id]
        self._entries[record.sandbox_id] = _Entry(record, entry.route, entry.slot)

    def pop(self, sandbox_id: str) -> tuple[SandboxRecord, int] | None:
        """Remove the entry; return its record and uid slot, or None if absent."""
        entry = self._entries.pop(sandbox_id, None)
        return None if entry is None else (entry.record, entry.slot)

    def record(self, sandbox_id: str) -> SandboxRecord | None:
        entry = self._entries.get(sandbox_id)
        return None if entry is None else entry.record

    def route(self, sandbox_id: str) -> SandboxRoute | None:
        entry = self._entries.get(sandbox_id)
        return None if entry is None else entry.route

    def records(self) -> Iterator[SandboxRecord]:
        return (entry.record for entry in self._entries.values())

    def routes(self) -> Iterator[SandboxRoute]:
        return (entry.route for entry in self._entries.values())

    def ids(self) -> list[str]:
        return list(self._entries)
