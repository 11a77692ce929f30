"""What only the PostgreSQL adapter can get wrong: commit order under concurrent writers, the
same bytes and hashes as SQLite, errors translated at the edge, and start-up on a bad URL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import psycopg
import pytest
from psycopg import pq

from silverexport.config import Settings
from silverexport.errors import (
    ConcurrencyError,
    InternalError,
    StorageError,
    ValidationError,
)
from silverexport.events.log import Append
from silverexport.events.postgres_log import PostgresEventLog
from silverexport.events.postgres_views import PostgresViewTables
from silverexport.events.types import JobProgressed, JobStarted

from .backends import PostgresBackend, SqliteBackend
from .lifecycles import requested

WRITERS = 4
BATCHES_PER_WRITER = 40


@pytest.mark.parametrize("lock", ["table", "advisory"])
def test_a_reader_never_sees_a_later_seq_before_an_earlier_one_commits(postgres_url, lock):
    """Writers on their own connections race; a reader polling all along must only ever see a
    gap-free prefix of the log. Were seq handed out before the commit order was fixed, a
    later seq could commit first and the reader would see the hole."""
    PostgresEventLog(postgres_url).close()
    stop = threading.Event()
    seen_holes: list[tuple[int, list[int]]] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            last = 0
            while not stop.is_set():
                seqs = [
                    r[0]
                    for r in conn.execute(
                        "SELECT seq FROM events WHERE seq > %s ORDER BY seq", [last]
                    )
                ]
                reads += 1
                if seqs and seqs != list(range(last + 1, last + 1 + len(seqs))):
                    seen_holes.append((last, seqs[:10]))
                    return
                last = seqs[-1] if seqs else last

    def write(w: int) -> None:
        log = PostgresEventLog(postgres_url, lock=lock)
        try:
            for b in range(BATCHES_PER_WRITER):
                log.append_batch(
                    [Append(f"w{w}-b{b}-j{j}", 0, [requested(j)]) for j in range(1 + b % 3)]
                )
        finally:
            log.close()

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for t in writers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    stop.set()
    reader.join(timeout=60)
    assert seen_holes == []
    assert reads > 0
    check = PostgresEventLog(postgres_url)
    try:
        expected = WRITERS * sum(1 + b % 3 for b in range(BATCHES_PER_WRITER))
        assert check.count() == check.last_seq() == expected
        assert check.first_bad_seq() is None
    finally:
        check.close()


def _unusual_events(log) -> None:
    """Data whose text a JSON type could normalise (non-ASCII, escapes, nesting, floats)."""
    log.append("jé", 0, requested(1, tenant="ålice ✓", key='k "quoted" \\ /'))
    log.append_batch(
        [
            Append("jé", 1, [JobStarted(attempt=1, owner="nöde-1\t𝄞")]),
            Append("j2", 0, [requested(2, tenant="bob")]),
            Append("j2", 1, [JobStarted(attempt=1), JobProgressed(rows=2**53 + 1)]),
        ]
    )


def test_the_same_rows_give_the_same_bytes_and_hashes_on_both_backends(
    tmp_path, postgres_url, postgres_server
):
    """Rows appended on PostgreSQL verify on SQLite and the other way round, byte for byte."""
    pg, lite = PostgresBackend(postgres_url), SqliteBackend(tmp_path)
    for side in (pg, lite):
        log = side.open()
        _unusual_events(log)
        log.close()
    (tmp_path / "copy").mkdir()
    other_db = postgres_server.fresh_database()
    try:
        copies = (
            (SqliteBackend(tmp_path / "copy"), pg.rows()),
            (PostgresBackend(postgres_server.url(other_db)), lite.rows()),
        )
        for target, rows in copies:
            target.open().close()
            target.insert_rows(rows)
            assert target.rows() == rows  # the same text, data included
            copy = target.open(create=False)
            try:
                assert copy.first_bad_seq() is None  # so the same hashes
                assert [r.hash for r in copy.read()] == [row[6] for row in rows]
            finally:
                copy.close()
    finally:
        postgres_server.drop_database(other_db)


def test_a_lost_connection_is_a_storage_error_and_the_next_append_reconnects(postgres_url):
    log = PostgresEventLog(postgres_url)
    try:
        log.append("j1", 0, requested(1))
        pid = log.conn.info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(StorageError, match="could not append to the event log"):
            log.append("j1", 1, JobStarted(attempt=1))
        [rec] = log.append("j1", 1, JobStarted(attempt=1))
        assert (rec.seq, rec.version) == (2, 2)
        assert log.conn.info.backend_pid != pid
    finally:
        log.close()


def test_a_wrong_password_or_a_dead_port_is_one_line_naming_the_setting(postgres_server):
    secret = "not-the-password-123"
    dead = postgres_server.url("postgres", password=secret).replace(
        f":{postgres_server.port}/", ":1/"
    )
    for url in (postgres_server.url("postgres", password=secret), dead):
        with pytest.raises(StorageError) as caught:
            PostgresEventLog(url)
        message = str(caught.value)
        assert message.startswith("SILVEREXPORT_EVENT_LOG_URL: cannot connect to postgresql://")
        assert secret not in message and "\n" not in message
        assert ":***@127.0.0.1" in message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://u:hunter2@h/db", "must be a postgresql:// or postgres:// URL"),
        ("postgresql://u:hunter2@h:port/db", "is not a valid URL"),
        ("postgres://u:hunter2@localhost", "must name a host and a database"),
    ],
)
def test_a_malformed_url_is_refused_by_the_settings(url, why):
    with pytest.raises(ValidationError, match=why) as caught:
        Settings.from_env({"SILVEREXPORT_EVENT_LOG_URL": url})
    assert "SILVEREXPORT_EVENT_LOG_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("command", [["verify"], ["jobs"], ["serve", "--port", "0"]])
def test_the_cli_exits_at_start_with_one_line_when_the_database_is_unreachable(
    tmp_path, postgres_server, command
):
    secret = "wrong-pw-456"
    env = {
        **os.environ,
        "SILVEREXPORT_EVENT_LOG_URL": postgres_server.url("postgres", password=secret),
        "SILVEREXPORT_DATA_DIR": str(tmp_path / "data"),
        "SILVEREXPORT_API_KEYS": "t:k",  # so that serve has no warning of its own to print
    }
    done = subprocess.run(
        [sys.executable, "-m", "silverexport", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("silverexport: error: SILVEREXPORT_EVENT_LOG_URL: cannot connect")
    assert secret not in done.stderr + done.stdout


def test_audit_verify_and_rebuild_run_against_the_postgres_log(postgres_url, monkeypatch, capsys):
    from silverexport.__main__ import main

    backend = PostgresBackend(postgres_url)
    log = backend.with_views(backend.open())
    log.append("j1", 0, requested(1), JobStarted(attempt=1))
    log.append("j2", 0, requested(2))
    log.close()
    monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", postgres_url)
    assert main(["verify"]) == 0
    assert capsys.readouterr().out.startswith("OK: 3 events (up to seq 3), hash chain intact")
    assert main(["audit", "j1"]) == 0
    assert "JobStarted" in capsys.readouterr().out
    assert main(["rebuild"]) == 0
    assert capsys.readouterr().out == "rebuilt the views of 2 jobs from 3 events\n"
    backend.drop_guards()
    backend.raw("UPDATE events SET stream_id = 'j3' WHERE seq = 2")
    assert main(["verify"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("FAILED: first bad seq 2\n")
    assert "guards: append-only trigger events_no_truncate is missing" in err


def test_a_constraint_broken_by_a_projector_is_not_a_conflict(pg_log):
    """Only the log's own collisions (version, seq, idempotency key) are contention."""
    log = pg_log

    class Duplicating:
        def project(self, conn, recorded):
            conn.execute("CREATE TABLE IF NOT EXISTS once (id TEXT PRIMARY KEY)")
            conn.execute("INSERT INTO once VALUES ('x')")

    log.projector = Duplicating()
    log.append("j1", 0, requested(1))
    with pytest.raises(InternalError, match="the append broke a constraint") as caught:
        log.append("j2", 0, requested(2))
    assert not isinstance(caught.value, ConcurrencyError)
    assert log.count() == 1


@pytest.fixture
def pg_log(postgres_url):
    log = PostgresEventLog(postgres_url)
    yield log
    log.close()


def test_an_append_lock_held_past_the_lock_timeout_is_a_storage_error(postgres_url):
    """Another connection holds the table (as a stuck writer would): the append gives up after
    the lock timeout, writes nothing, and goes through once the lock is gone."""
    log = PostgresEventLog(postgres_url, lock_timeout_ms=100)
    holder = psycopg.connect(postgres_url)
    try:
        log.append("j1", 0, requested(1))
        holder.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        with pytest.raises(StorageError, match="lock timeout"):
            log.append("j1", 1, JobStarted(attempt=1))
        holder.rollback()
        assert [r.seq for r in log.append("j1", 1, JobStarted(attempt=1))] == [2]
    finally:
        holder.close()
        log.close()


def _round_trips(conn: psycopg.Connection, path, act) -> int:
    """How many times the client sent and then waited for the server's answers while `act`
    ran: the runs of client messages in libpq's own trace of the protocol."""
    with path.open("w") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            act()
        finally:
            conn.pgconn.untrace()
    sides = [line[0] for line in path.read_text().splitlines() if line[:1] in ("F", "B")]
    return sum(1 for i, side in enumerate(sides) if side == "F" and (i == 0 or sides[i - 1] == "B"))


def test_an_append_with_the_views_takes_two_round_trips(postgres_url, tmp_path):
    """The append lock is held through an append's round trips, so they bound the log: one
    answers the lock and every read (the views' too), one every write and the commit."""
    log = PostgresEventLog(postgres_url)
    views = log.projector = PostgresViewTables(log)
    try:
        log.append("j1", 0, requested(1))
        batch = [
            Append("j1", 1, [JobStarted(attempt=1), JobProgressed(rows=5)]),
            Append("j2", 0, [requested(2)]),
        ]
        trips = _round_trips(log.conn, tmp_path / "trace", lambda: log.append_batch(batch))
        assert trips == 2
        assert (views.load("j1")["status"], views.load("j1")["rows"]) == ("running", 5)
        assert views.load("j2")["status"] == "queued"
        assert views.checkpoint() == log.last_seq() == 4
        assert log.first_bad_seq() is None
    finally:
        log.close()


def test_a_collision_met_at_commit_rolls_back_and_leaves_the_connection_idle(pg_log, caplog):
    """The idempotency index refuses the row in the second round trip, with COMMIT already
    sent: the transaction is rolled back, nothing is logged, and the next append goes in."""
    pg_log.append("j1", 0, requested(1, key="k"))
    with (
        caplog.at_level(logging.WARNING, logger="psycopg"),
        pytest.raises(ConcurrencyError, match="another writer appended first"),
    ):
        pg_log.append("j2", 0, requested(2, key="k"))
    assert caplog.records == []
    assert pg_log.conn.info.transaction_status == pq.TransactionStatus.IDLE
    assert [r.seq for r in pg_log.append("j2", 0, requested(2))] == [2]
