"""Read connections for the system's callers, one per thread (the HTTP executor's threads
are bounded), so reads never queue behind the supervisor's connection. A reader that lost
its server is replaced, so the first read after the database returns answers rather than a
503 per thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from .errors import StorageError


class ThreadReaders:
    """The log's reader connections by calling thread; `close` closes every one opened."""

    def __init__(self, log: Any):
        self._log = log
        self._local = threading.local()
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    def read(self, query: Callable[..., Any], *args: Any) -> Any:
        """`query(reader, *args)` on this thread's reader, and once more on a new one when
        the reader turns out to have lost its server (restarted since this thread last read):
        the first read after the database returns answers, rather than a 503 per thread."""
        reader = self._reader()
        try:
            return query(reader, *args)
        except StorageError:
            if self._log.reader_ok(reader):
                raise  # the database answered with an error, or is still away
            return query(self._reader(), *args)

    def _reader(self):
        """A read connection per calling thread (the HTTP executor's threads are bounded)."""
        db = getattr(self._local, "db", None)
        if db is not None and not self._log.reader_ok(db):
            with self._lock:  # lost with its database connection: open another
                self._conns.remove(db)
            with contextlib.suppress(Exception):
                db.close()
            db = self._local.db = None  # forgotten even if no new one can be opened now
        if db is None:
            db = self._log.open_reader()
            self._local.db = db
            with self._lock:
                self._conns.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
