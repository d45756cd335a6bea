"""Uid slots: each sandbox gets a disjoint range of 65536 host uids for its user namespace."""

from __future__ import annotations

import heapq

__all__ = ["UID_BASE", "UID_RANGE", "UidSlots", "slot_of_uid_base", "uid_base_of_slot"]

UID_BASE = 100_000
UID_RANGE = 65_536


def uid_base_of_slot(slot: int) -> int:
    return UID_BASE + slot * UID_RANGE


def slot_of_uid_base(uid_base: int) -> int | None:
    """The slot whose range starts at `uid_base`, or None if it is not a slot boundary."""
    offset = uid_base - UID_BASE
    if offset < 0 or offset % UID_RANGE:
        return None
    return offset // UID_RANGE


class UidSlots:
    """Hands out the lowest free slot in [0, capacity)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._taken: set[int] = set()
        self._free = list(range(capacity))  # a heap; sorted lists are valid heaps

    @property
    def in_use(self) -> int:
        return len(self._taken)

    def allocate_nowait(self) -> int | None:
        """Take the lowest free slot; None when all are taken."""
        if not self._free:
            return None
        slot = heapq.heappop(self._free)
        self._taken.add(slot)
        return slot

    def claim(self, slot: int) -> bool:
        """Take a specific slot (re-adoption); False if it is taken or out of range."""
        if not 0 <= slot < self._capacity or slot in self._taken:
            return False
        self._taken.add(slot)
        self._free.remove(slot)
        heapq.heapify(self._free)
        return True

    def release(self, slot: int) -> None:
        if slot in self._taken:
            self._taken.remove(slot)
            heapq.heappush(self._free, slot)
