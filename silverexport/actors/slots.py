"""Slots: one concurrency budget shared by exports and the embedding process's ingestion.

The pool has `total` slots; each side has a reserve the other side can never take, and the
rest is shared first come, first served. A burst of exports therefore cannot starve ingestion,
nor the other way round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from ..errors import SilverExportError


class Side(StrEnum):
    EXPORT = "export"
    INGESTION = "ingestion"


class SlotTimeout(SilverExportError):
    """No slot became free before the deadline."""

    code = "slot_timeout"


@dataclass(frozen=True, slots=True)
class SlotUsage:
    total: int
    exports: int
    ingestion: int
    export_reserve: int
    ingestion_reserve: int
    export_cap: int


class Slots:
    """A reserved, shared pool of slots, safe to use from any thread."""

    def __init__(
        self,
        total: int,
        *,
        export_reserve: int = 1,
        ingestion_reserve: int = 1,
        export_cap: int | None = None,
    ):
        if total < 1 or export_reserve < 0 or ingestion_reserve < 0:
            raise ValueError("slots need total >= 1 and reserves >= 0")
        if export_reserve + ingestion_reserve > total:
            raise ValueError("the two reserves exceed the total")
        self.total = total
        self._reserve = {Side.EXPORT: export_reserve, Side.INGESTION: ingestion_reserve}
        # Exports are also capped by max_concurrent_exports: that bounds their threads.
        self._cap = {Side.EXPORT: export_cap or total, Side.INGESTION: total}
        self._used = {Side.EXPORT: 0, Side.INGESTION: 0}
        self._cond = threading.Condition()
        self._listeners: list[Callable[[], None]] = []

    def _can_take(self, side: Side) -> bool:
        other = Side.INGESTION if side is Side.EXPORT else Side.EXPORT
        if self._used[side] >= self._cap[side]:
            return False
        held_for_other = max(0, self._reserve[other] - self._used[other])
        free = self.total - self._used[side] - self._used[other]
        return free - held_for_other > 0

    def try_acquire(self, side: Side) -> bool:
        with self._cond:
            if not self._can_take(side):
                return False
            self._used[side] += 1
            return True

    def acquire(self, side: Side, timeout: float | None = None) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._can_take(side), timeout):
                raise SlotTimeout(f"no {side.value} slot became free within {timeout} s")
            self._used[side] += 1

    def release(self, side: Side) -> None:
        with self._cond:
            if self._used[side] <= 0:
                raise RuntimeError(f"release of a {side.value} slot that was not held")
            self._used[side] -= 1
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_release(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the releasing thread) whenever a slot frees up."""
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    @contextmanager
    def ingestion(self, timeout: float | None = None) -> Iterator[None]:
        """Hold an ingestion slot for the block; waits (up to `timeout`) for one to free up."""
        self.acquire(Side.INGESTION, timeout)
        try:
            yield
        finally:
            self.release(Side.INGESTION)

    def usage(self) -> SlotUsage:
        with self._cond:
            return SlotUsage(
                total=self.total,
                exports=self._used[Side.EXPORT],
                ingestion=self._used[Side.INGESTION],
                export_reserve=self._reserve[Side.EXPORT],
                ingestion_reserve=self._reserve[Side.INGESTION],
                export_cap=self._cap[Side.EXPORT],
            )
