"""One way to open SQLite here: WAL, a busy timeout, durable commits, explicit transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from .errors import StorageError

BUSY_TIMEOUT_MS = 30_000


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a database in autocommit mode, so that every transaction is one we began.

    `synchronous=FULL` in WAL mode syncs the WAL on every commit: an append that returned is on
    disk even if the machine loses power, not only if the process dies.
    """
    path = Path(path)
    if readonly:
        if not path.exists():
            raise StorageError(f"the database {path.name} does not exist")
        conn = sqlite3.connect(
            f"file:{quote(str(path))}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"could not switch {path} to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
    except BaseException as e:
        conn.close()  # a connection that could not be set up is not left open
        if isinstance(e, sqlite3.OperationalError):
            raise StorageError(f"could not open {path}: {e}") from e
        raise
    return conn


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock up front (no upgrade deadlocks)."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        raise StorageError(f"could not start a write transaction: {e}") from e
    try:
        yield db
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    else:
        try:
            db.execute("COMMIT")
        except sqlite3.Error as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StorageError(f"commit failed: {e}") from e


@contextmanager
def snapshot(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every query inside sees one consistent state of the database."""
    db.execute("BEGIN")
    try:
        yield db
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
