"""Start-up reconciliation after a crash: what the host runs vs what the store remembers.

`plan_reconciliation` is pure: given the store's rows and the runtime's live sandboxes it
decides which sandboxes to re-adopt, which to stop and which rows to delete. The
orchestrator carries the plan out and logs a `ReconcileReport`.

Rules: a live sandbox is re-adopted only if its row is RUNNING, not expired, and holds a
valid, unshared uid slot. Every other live sandbox is stopped (including ones without a row)
and every row without a re-adopted sandbox is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from corral.model import SandboxRecord, SandboxState
from corral.orchestrator.slots import slot_of_uid_base
from corral.runtime import LiveSandbox

__all__ = ["Adoption", "ReconcilePlan", "ReconcileReport", "plan_reconciliation"]


@dataclass(frozen=True)
class Adoption:
    record: SandboxRecord
    sandbox: LiveSandbox
    slot: int


@dataclass(frozen=True)
class ReconcilePlan:
    adopt: tuple[Adoption, ...]
    stop: tuple[str, ...]
    """Live sandboxes to stop: bad rows and sandboxes without a row."""
    delete_rows: tuple[str, ...]
    """Rows to delete once their sandbox (if any) is stopped."""


@dataclass(frozen=True)
class ReconcileReport:
    adopted: tuple[str, ...]
    stopped: tuple[str, ...]
    rows_deleted: tuple[str, ...]
    swept: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"reconciled: re-adopted {len(self.adopted)} sandbox(es) {list(self.adopted)}, "
            f"stopped {len(self.stopped)} {list(self.stopped)}, "
            f"deleted {len(self.rows_deleted)} stale row(s) {list(self.rows_deleted)}, "
            f"swept {len(self.swept)} leftover(s) {list(self.swept)}"
        )


def plan_reconciliation(
    rows: Iterable[SandboxRecord], live: Iterable[LiveSandbox], now: float, capacity: int
) -> ReconcilePlan:
    live_by_id = {sandbox.sandbox_id: sandbox for sandbox in live}
    adopt: list[Adoption] = []
    stop: list[str] = []
    delete_rows: list[str] = []
    slots_taken: set[int] = set()
    for row in rows:
        sandbox = live_by_id.pop(row.sandbox_id, None)
        slot = slot_of_uid_base(row.uid_base)
        usable = (
            sandbox is not None
            and row.state is SandboxState.RUNNING
            and row.end_at > now
            and slot is not None
            and slot < capacity
            and slot not in slots_taken
        )
        if usable and sandbox is not None and slot is not None:
            adopt.append(Adoption(row, sandbox, slot))
            slots_taken.add(slot)
            continue
        if sandbox is not None:
            stop.append(row.sandbox_id)
        delete_rows.append(row.sandbox_id)
    stop.extend(live_by_id)
    return ReconcilePlan(tuple(adopt), tuple(stop), tuple(delete_rows))
