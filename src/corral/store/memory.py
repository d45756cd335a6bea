"""`MemoryStore`: a dict-backed `Store` for unit tests (nothing survives the process)."""

from __future__ import annotations

from corral.model import SandboxRecord
from corral.store.base import DuplicateSandbox, UnknownSandbox

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps rows in a dict, with the same semantics as `SqliteStore`."""

    def __init__(self) -> None:
        self._rows: dict[str, SandboxRecord] = {}

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

    def close(self) -> None:
        self._rows.clear()
