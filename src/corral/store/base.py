"""The `Store` protocol and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from corral.model import SandboxRecord
from corral.store.connections import ConnectionEntry, FlowEnd, Verdict
from corral.store.events import LimitEvent

__all__ = ["DuplicateSandbox", "SchemaMismatch", "Store", "StoreError", "UnknownSandbox"]


class StoreError(Exception):
    """Base of store errors. Messages name the sandbox id, never secrets."""


class DuplicateSandbox(StoreError):
    """`insert` of a sandbox id that already has a row."""


class UnknownSandbox(StoreError):
    """`update` of a sandbox id that has no row."""


class SchemaMismatch(StoreError):
    """The database's schema version is not one this code can read."""


class Store(Protocol):
    """Sandbox rows keyed by sandbox id, plus the limit events and connection-log entries of
    sandboxes (also of removed ones, for a while). Calls are synchronous and fast (local, WAL).

    Every call is made from the server's event-loop thread; a store need not be thread-safe.
    """

    def insert(self, record: SandboxRecord) -> None:
        """Add a new row; raises `DuplicateSandbox` if the id exists."""

    def update(self, record: SandboxRecord) -> None:
        """Replace the row of `record.sandbox_id`; raises `UnknownSandbox` if there is none."""

    def delete(self, sandbox_id: str) -> bool:
        """Remove the row; return whether there was one."""

    def get(self, sandbox_id: str) -> SandboxRecord | None:
        """The row of `sandbox_id`, or None."""

    def all(self) -> list[SandboxRecord]:
        """Every row, oldest first."""

    def add_limit_events(self, events: Sequence[LimitEvent]) -> None:
        """Append events; keep only the newest `EVENTS_PER_SANDBOX` of each sandbox. Events
        outlive their sandbox's row (they are history, removed by `prune_limit_events`)."""

    def limit_events(self, sandbox_id: str) -> list[LimitEvent]:
        """The kept events of `sandbox_id`, oldest first (empty if none)."""

    def prune_limit_events(self, before: float) -> int:
        """Delete events older than unix time `before`; return how many were deleted."""

    def add_connections(self, entries: Sequence[ConnectionEntry]) -> None:
        """Append connection-log entries; keep only the newest `CONNECTIONS_PER_SANDBOX` of
        each sandbox. Like limit events they outlive the sandbox (`prune_connections`)."""

    def end_connections(self, ends: Sequence[FlowEnd]) -> None:
        """Give each ended flow's byte counts to the newest entry of the same flow (sandbox,
        protocol, destination, port, source port) if that entry has not ended yet; if it has
        (Corral's proxy counted it already) the end is ignored; a flow without any entry is
        added as an allowed entry of its own (its start was not logged)."""

    def connections(
        self, sandbox_id: str, limit: int, verdict: Verdict | None = None
    ) -> list[ConnectionEntry]:
        """The newest `limit` entries of `sandbox_id` (only `verdict` ones if given), oldest
        first."""

    def prune_connections(self, before: float) -> int:
        """Delete entries older than unix time `before`; return how many were deleted."""

    def close(self) -> None:
        """Release the backing resources. The store is unusable afterwards."""
