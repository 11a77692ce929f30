"""Readers on one snapshot (SQLite): they see what the export's connection sees, or none."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from silverexport import sqlite as sq
from silverexport.silver import writers
from silverexport.silver.shared_snapshot import Readers, pin


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "t.db"
    conn = sq.connect(path)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    yield path, conn
    conn.close()


def count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def test_pinned_readers_keep_the_snapshot_of_the_main_connection(db):
    path, writer = db
    main = sq.connect(path, readonly=True)
    main.execute("BEGIN")
    readers = pin(main, path, 2)
    writer.execute("INSERT INTO t VALUES (2)")
    assert len(readers) == 2
    assert [count(c) for c in (main, *readers)] == [1, 1, 1]
    assert count(sq.connect(path, readonly=True)) == 2  # a new connection sees the commit


def test_readers_are_only_given_when_no_commit_came_between(db):
    """Commits race the pinning; whenever readers are given, they read main's state, and a
    commit that lands inside the pinning makes it give none."""
    path, _ = db
    stop = threading.Event()

    def commit_all_the_time() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        while not stop.is_set():
            conn.execute("INSERT INTO t VALUES (3)")
        conn.close()

    committer = threading.Thread(target=commit_all_the_time)
    committer.start()
    given = refused = 0
    deadline = time.monotonic() + 60
    try:
        while not (given and refused) and time.monotonic() < deadline:
            main = sq.connect(path, readonly=True)
            main.execute("BEGIN")
            readers = pin(main, path, 2)
            if readers:
                given += 1
                assert len({count(c) for c in (main, *readers)}) == 1
            else:
                refused += 1
            for c in (main, *readers):
                c.close()
    finally:
        stop.set()
        committer.join()
    assert given and refused


def test_results_come_in_the_order_of_the_jobs(db):
    path, _ = db
    main = sq.connect(path, readonly=True)
    main.execute("BEGIN")

    def render(conn: sqlite3.Connection, job: int) -> tuple[int, int]:
        time.sleep(0.001 * (job % 3))  # later jobs may finish first
        return job, id(conn)

    with Readers(main, pin(main, path, 2), render) as readers:
        out = list(readers.results(range(20)))
    assert [job for job, _ in out] == list(range(20))
    assert id(main) not in {conn for _, conn in out} and len({conn for _, conn in out}) == 2


def test_without_readers_the_main_connection_renders_in_this_thread(db):
    path, _ = db
    main = sq.connect(path, readonly=True)

    def render(conn: sqlite3.Connection, job: int) -> tuple[int, str]:
        return count(conn), threading.current_thread().name

    with Readers(main, [], render) as readers:
        assert list(readers.results([0])) == [(1, threading.current_thread().name)]


def test_a_render_error_reaches_the_caller(db):
    path, _ = db
    main = sq.connect(path, readonly=True)
    main.execute("BEGIN")

    def render(conn: sqlite3.Connection, job: int) -> int:
        return conn.execute("SELECT * FROM no_such_table" if job == 3 else "SELECT 1").fetchone()

    with Readers(main, pin(main, path, 2), render) as readers, pytest.raises(sqlite3.Error):
        list(readers.results(range(10)))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_is_the_same_on_one_connection_or_several(sqlite_store, transfer, tmp_path, fmt):
    store = sqlite_store  # SQLite's own readers: the store fixture runs PostgreSQL too
    store.ingest("token_transfers", [transfer(log_index=i, token_symbol=",") for i in range(23)])
    files = []
    for n in (0, writers.READERS):
        path = tmp_path / f"{n}.{fmt}"
        files.append(path)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(writers, "READERS", n)
            writers.export_to_file(store.path, "token_transfers", fmt, path, limit=20, batch_size=3)
    assert files[0].read_bytes() == files[1].read_bytes()
