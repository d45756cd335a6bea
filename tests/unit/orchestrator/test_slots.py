from __future__ import annotations

from corral.orchestrator.slots import UidSlots, slot_of_uid_base, uid_base_of_slot


def test_lowest_free_slot_first_and_claims() -> None:
    slots = UidSlots(3)
    assert slots.claim(1)
    assert not slots.claim(1) and not slots.claim(3) and not slots.claim(-1)
    assert slots.allocate_nowait() == 0
    assert slots.allocate_nowait() == 2
    assert slots.allocate_nowait() is None
    slots.release(1)
    slots.release(1)  # idempotent
    assert slots.allocate_nowait() == 1
    assert slots.in_use == 3


def test_uid_base_round_trip() -> None:
    assert uid_base_of_slot(0) == 100000 and uid_base_of_slot(2) == 100000 + 2 * 65536
    assert slot_of_uid_base(uid_base_of_slot(41)) == 41
    assert slot_of_uid_base(99999) is None and slot_of_uid_base(100001) is None
