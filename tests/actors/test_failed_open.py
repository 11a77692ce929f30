"""A failed open leaves nothing behind (issue 10 item 13)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pykka
import pytest

from silverexport import ExportSystem, sqlite
from silverexport.errors import StorageError
from silverexport.events.sqlite_log import SqliteEventLog

from .history import finished_jobs

_HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("CREATE TABLE IF NOT EXISTS hold (x)")
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO hold VALUES (1)")
print("LOCKED", flush=True)
sys.stdin.read()
"""


def _leftovers(data_dir):
    return (
        sorted(t.name for t in threading.enumerate()),
        len(pykka.ActorRegistry.get_all()),
        sorted(p.name for p in (data_dir / "owners").iterdir()),
        sorted(os.listdir("/proc/self/fd")),
    )


@pytest.mark.sqlite_log  # raw SQL on the SQLite log file
@pytest.mark.parametrize("stage", ["views", "supervisor start-up"])
def test_an_open_on_a_locked_log_fails_and_leaves_nothing_behind(tmp_path, monkeypatch, stage):
    data_dir = tmp_path / "data"
    ExportSystem.open(data_dir).close()
    if stage == "supervisor start-up":
        # Events appended without the views: the supervisor's start-up must catch them up,
        # which needs the write lock, after the actor and its owner lock exist.
        log = SqliteEventLog(data_dir / "events.db")
        log.append_batch(finished_jobs(3))
        log.close()
    if stage == "views":
        (data_dir / "events.db").unlink()  # a fresh log: its views must be made, under the lock
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 50)
    # Another process holds the write lock (in this one, SQLite would keep closed files open
    # until its own lock is released, and the count of open files would mean nothing).
    locker = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(data_dir / "events.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "LOCKED"
        before = _leftovers(data_dir)
        with pytest.raises(StorageError):
            ExportSystem.open(data_dir)
        assert _leftovers(data_dir) == before
    finally:
        locker.stdin.close()
        locker.wait(timeout=30)
    with ExportSystem.open(data_dir) as system:  # and the data dir opens once the lock is gone
        assert system.log.first_bad_seq() is None


def test_a_part_that_fails_to_close_does_not_keep_the_others_open(tmp_path, caplog):
    """close() runs every step: a log that will not close still lets the actors stop, the
    Silver store close and the owner lock go, and the first failure is raised."""
    data_dir = tmp_path / "data"
    system = ExportSystem.open(data_dir)
    closing_log, closing_store = system.log.close, system.store.close
    closed = []

    def log_will_not_close():
        closing_log()
        raise OSError("the disk went away")

    def store_will_not_close():
        closing_store()
        closed.append("store")
        raise OSError("and so did this")

    system.log.close = log_will_not_close
    system.store.close = store_will_not_close
    with pytest.raises(OSError, match="the disk went away"):
        system.close()
    assert closed == ["store"]
    assert "and so did this" in caplog.text
    assert pykka.ActorRegistry.get_all() == []
    owners = data_dir / "owners"  # the SQLite log's owner locks (a PostgreSQL log has leases)
    assert not owners.exists() or list(owners.iterdir()) == []
    with ExportSystem.open(data_dir) as again:  # the owner and the files are free
        assert again.log.first_bad_seq() is None
