"""The shared concurrency budget: reserves hold against a burst from the other side."""

from __future__ import annotations

import threading

import pytest

from silverexport.actors.slots import Side, Slots, SlotTimeout


def test_exports_cannot_take_the_ingestion_reserve():
    slots = Slots(6, export_reserve=1, ingestion_reserve=2)
    taken = 0
    while slots.try_acquire(Side.EXPORT):
        taken += 1
    assert taken == 4
    with slots.ingestion(timeout=1), slots.ingestion(timeout=1):
        assert slots.usage().ingestion == 2


def test_ingestion_cannot_take_the_export_reserve():
    slots = Slots(6, export_reserve=1, ingestion_reserve=2)
    held = 0
    while slots.try_acquire(Side.INGESTION):
        held += 1
    assert held == 5
    assert slots.try_acquire(Side.EXPORT)
    assert not slots.try_acquire(Side.EXPORT)


def test_export_cap_bounds_exports_even_with_free_slots():
    slots = Slots(10, export_reserve=1, ingestion_reserve=1, export_cap=3)
    assert [slots.try_acquire(Side.EXPORT) for _ in range(4)] == [True, True, True, False]


def test_ingestion_waits_for_a_slot_and_times_out_clearly():
    slots = Slots(2, export_reserve=1, ingestion_reserve=1)
    assert slots.try_acquire(Side.INGESTION)
    with pytest.raises(SlotTimeout, match="ingestion"):
        slots.acquire(Side.INGESTION, timeout=0.05)
    freed = threading.Event()
    slots.on_release(freed.set)
    slots.release(Side.INGESTION)
    assert freed.is_set()
    with slots.ingestion(timeout=1):
        pass
    assert slots.usage().ingestion == 0


def test_release_of_an_unheld_slot_is_an_error():
    slots = Slots(2)
    with pytest.raises(RuntimeError):
        slots.release(Side.EXPORT)


def test_reserves_larger_than_total_are_refused():
    with pytest.raises(ValueError):
        Slots(2, export_reserve=2, ingestion_reserve=1)
