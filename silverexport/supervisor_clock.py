"""What tells the supervisor to act besides its callers: a Tick on a timer (catch-up, expiry,
sweeps), a Wake when another node appended, a Schedule when a slot frees. A Tick or Wake is
not sent while the last one is still pending, so a busy or blocked supervisor (a locked log,
say) never finds a backlog of them in its mailbox.
"""

from __future__ import annotations

import contextlib
import threading

import pykka

from .actors.messages import Schedule, Tick, Wake


class SupervisorClock:
    """The timer thread and the nudges for one supervisor; `start` once, then `stop`."""

    def __init__(self, supervisor: pykka.ActorRef, *, interval: float):
        self._supervisor = supervisor
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_pending = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._tick_loop, name="silverexport-timer", daemon=True
        )
        self._thread.start()

    def signal_stop(self) -> None:
        """No Tick after this; `join` waits for the timer thread to end."""
        self._stop.set()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _tick_loop(self) -> None:
        handled = threading.Event()
        handled.set()
        while not self._stop.wait(self._interval):
            if not handled.is_set():
                continue  # the last Tick is still queued or running (a locked log, say)
            handled.clear()
            with contextlib.suppress(pykka.ActorDeadError):
                self._supervisor.tell(Tick(handled))

    def wake(self) -> None:
        """The log grew (told by the listener's thread): one catch-up on its way at a time."""
        if self._wake_pending.is_set():
            return
        self._wake_pending.set()
        with contextlib.suppress(pykka.ActorDeadError):
            self._supervisor.tell(Wake(self._wake_pending))

    def slot_released(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self._supervisor.tell(Schedule())
