"""Prompt news of appends on PostgreSQL: LISTEN on a connection of its own, on a thread of its
own, and tell the system to catch up whenever another node (or this one) appended.

The log's append sends `NOTIFY` inside its own transaction (events/postgres_log.py), so a
notification arrives only once the events are committed and readable. Polling on the Tick
stays the fallback: when the listening connection is lost, the thread connects again, LISTENs
again and asks for a catch-up at once, since what was appended meanwhile sent nothing here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import psycopg

from ..errors import StorageError
from ..events.postgres_conn import connect, one_line
from ..events.postgres_log import NOTIFY_CHANNEL

log = logging.getLogger("silverexport.nodes")
APPLICATION_NAME = "silverexport-listen"
WAIT_SECONDS = 0.5  # how often the thread looks up from the socket to see if it must stop


class LogListener:
    """Calls `on_change()` after appends, on its own thread, until closed."""

    def __init__(self, url: str, on_change: Callable[[], None], *, retry_seconds: float = 1.0):
        self.url = url
        self.on_change = on_change
        self.retry_seconds = retry_seconds
        # Set while a LISTEN is in place and the catch-up for the time before it was asked for:
        # from then on only a NOTIFY (or the Tick) brings news, which is what tests wait on.
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="silverexport-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        lost_since_logged = False
        while not self._stop.is_set():
            try:
                conn = connect(self.url)
            except StorageError as e:
                if not lost_since_logged:
                    log.warning("cannot LISTEN for appends (polling meanwhile): %s", e)
                    lost_since_logged = True
                self._stop.wait(self.retry_seconds)
                continue
            try:
                conn.execute(f"SET application_name = '{APPLICATION_NAME}'")  # for operators
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                if lost_since_logged:
                    log.warning("listening for appends again")
                    lost_since_logged = False
                self.on_change()  # what was appended while nobody here listened
                self.listening.set()
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=WAIT_SECONDS):
                        self.on_change()
            except psycopg.Error as e:
                if not self._stop.is_set():
                    log.warning("lost the LISTEN connection (polling meanwhile): %s", one_line(e))
                    lost_since_logged = True
                    self._stop.wait(self.retry_seconds)
            finally:
                self.listening.clear()
                with contextlib.suppress(psycopg.Error):
                    conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT_SECONDS + 10)
