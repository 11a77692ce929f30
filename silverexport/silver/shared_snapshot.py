"""Several SQLite connections reading one snapshot, so that an export renders on every core.

SQLite builds an export's lines on the thread that steps the statement, and Python's sqlite3
lets go of the GIL while it steps; but one connection runs one statement at a time, so an
export on one connection uses one core. Two readers rendering alternate batches use two.

They must read exactly the state the export's own connection reads (SPEC: one consistent
snapshot). Python cannot hand a WAL snapshot from one connection to another, so `pin` checks
instead: `PRAGMA data_version` changes when another connection commits, so a reader that
reads the same version before the others start their read transactions and again as it
starts its own proves that nothing was committed in between, and every connection sees the
same state. If something was, the readers are closed and the export renders on its own
connection, as it always could.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import sqlite as sq


def _data_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA data_version").fetchone()[0]


def pin(main: sqlite3.Connection, path: str | Path, readers: int) -> list[sqlite3.Connection]:
    """`readers` read-only connections in read transactions on the snapshot that `main` (in a
    transaction that has not read yet) reads from now on; none if that cannot be proved."""
    if readers < 1:
        return []
    opened = [sq.connect(path, readonly=True) for _ in range(readers)]
    try:
        *others, checker = opened
        before = _data_version(checker)  # outside a transaction: the latest commit's version
        for conn in others:
            conn.execute("BEGIN")
        for conn in (main, *others):
            _data_version(conn)  # the first read in a transaction pins its snapshot
        checker.execute("BEGIN")
        if _data_version(checker) == before:  # no commit since `before`: one snapshot
            return opened
    except BaseException:
        _close(opened)
        raise
    _close(opened)
    return []


def _close(conns: Iterable[sqlite3.Connection]) -> None:
    for conn in conns:
        with contextlib.suppress(sqlite3.Error):
            conn.close()


class Readers:
    """Runs `render(conn, job)` for a stream of jobs on the pinned connections, a thread
    each, and gives the results in the jobs' order. At most one job more than there are
    connections is in flight, so memory stays flat. With no connections, it renders on
    `main` in the caller's thread (a connection is never used by two threads at once)."""

    def __init__(self, main: sqlite3.Connection, conns: list[sqlite3.Connection], render: Callable):
        self.main, self.conns, self.render = main, conns, render
        self.free: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        for conn in conns:
            self.free.put(conn)
        self.pool = (
            ThreadPoolExecutor(len(conns), thread_name_prefix="silver-export-reader")
            if conns
            else None
        )

    def results(self, jobs: Iterable[Any]) -> Iterator[Any]:
        if self.pool is None:
            yield from (self.render(self.main, job) for job in jobs)
            return
        pending: deque[Future] = deque()
        for job in jobs:
            pending.append(self.pool.submit(self._on_free_conn, job))
            if len(pending) > len(self.conns):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _on_free_conn(self, job: Any) -> Any:
        conn = self.free.get()
        try:
            return self.render(conn, job)
        finally:
            self.free.put(conn)

    def close(self) -> None:
        """Waits for renders in flight (after an error or a cancel), then closes the readers."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        _close(self.conns)

    def __enter__(self) -> Readers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
