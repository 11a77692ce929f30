"""The log itself: append-only by the database, optimistic concurrency, group commit, chain."""

from __future__ import annotations

import sqlite3

import pytest

from silverexport.errors import ConcurrencyError, IntegrityError, StorageError
from silverexport.events.log import APPEND_ONLY_MESSAGE, Append, EventLog
from silverexport.events.types import JobProgressed, JobStarted, decode

from .lifecycles import drop_guards, forge, requested


def _counts(log: EventLog) -> tuple[int, int, int]:
    jobs = log.db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return log.count(), log.last_seq(), jobs


def test_append_assigns_seq_version_and_chain_and_reads_back(log):
    first = log.append("j1", 0, requested(1), JobStarted(attempt=1))
    second = log.append("j2", 0, requested(2))
    assert [(r.seq, r.stream_id, r.version) for r in first + second] == [
        (1, "j1", 1),
        (2, "j1", 2),
        (3, "j2", 1),
    ]
    assert list(log.read()) == first + second
    assert list(log.read(stream_id="j1")) == first
    assert list(log.read(1, upto_seq=2)) == first[1:]
    assert log.first_bad_seq() is None


def test_the_connection_is_durable_wal_with_a_busy_timeout(log):
    pragma = log.db.conn.execute
    assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert pragma("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert pragma("PRAGMA busy_timeout").fetchone()[0] > 0


@pytest.mark.parametrize(
    "sql", ["UPDATE events SET data = '{}' WHERE seq = 1", "DELETE FROM events WHERE seq = 1"]
)
def test_the_database_itself_refuses_update_and_delete(log, sql):
    log.append("j1", 0, requested(1))
    raw = sqlite3.connect(log.path)  # not our code: the refusal lives in the file
    with pytest.raises(sqlite3.IntegrityError, match=APPEND_ONLY_MESSAGE):
        raw.execute(sql)
    raw.close()
    assert log.count() == 1
    assert log.first_bad_seq() is None


def test_a_second_writer_of_the_same_version_is_refused_by_the_database(log):
    log.append("j1", 0, requested(1))
    raw = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        raw.execute("INSERT INTO events VALUES (99, 'j1', 1, 'JobStarted', '{}', 'now', 'x')")
    raw.close()


def test_a_stale_expected_version_is_a_concurrency_error_and_writes_nothing(log):
    log.append("j1", 0, requested(1))
    before = _counts(log)
    with pytest.raises(ConcurrencyError, match="j1 is at version 1, not 0"):
        log.append("j1", 0, JobStarted(attempt=1))
    assert _counts(log) == before


def test_two_event_logs_on_one_file_race_for_a_version(tmp_path, log):
    log.append("j1", 0, requested(1))
    other = EventLog(tmp_path / "events.db")  # a second process's connection, no views
    try:
        # Both believe j1 is at version 1; the first to commit wins.
        other.append("j1", 1, JobStarted(attempt=1, owner="other"))
        before = _counts(log)
        with pytest.raises(ConcurrencyError):
            log.append("j1", 1, JobStarted(attempt=1, owner="me"))
        assert _counts(log) == before
        assert [r.event for r in log.read(stream_id="j1")][-1].owner == "other"
    finally:
        other.close()


def test_the_log_refuses_a_second_request_with_one_tenant_s_idempotency_key(tmp_path, log):
    """The guard is the log's own: a process appending without views meets it too."""
    log.append("j1", 0, requested(1, tenant="alice", key="k"))
    bare = EventLog(tmp_path / "events.db")  # another process, no views
    try:
        before = _counts(log)
        for appender in (bare, log):
            with pytest.raises(ConcurrencyError, match="another writer appended first"):
                appender.append_batch(
                    [Append("j9", 0, [requested(9)]), Append("j2", 0, [requested(2, key="k")])]
                )
            assert _counts(log) == before  # all or nothing: j9 is not written either
        # Another tenant's key, no key at all (many times), and the same key's own job go in.
        log.append("j2", 0, requested(2, tenant="bob", key="k"))
        log.append_batch([Append("j3", 0, [requested(3)]), Append("j4", 0, [requested(4)])])
        log.append("j1", 1, JobStarted(attempt=1))
        assert log.count() == before[0] + 4
    finally:
        bare.close()


def test_opening_a_log_whose_requests_share_a_key_names_the_problem(tmp_path, log):
    log.append("j1", 0, requested(1, key="k"))
    log.db.execute("DROP INDEX events_idempotency")  # as a log written without the guard was
    log.append("j2", 0, requested(2, key="k"))
    with pytest.raises(IntegrityError, match="two requests of one tenant share an idempotency"):
        EventLog(tmp_path / "events.db")


def test_group_commit_is_all_or_nothing_on_a_version_conflict(log):
    log.append("j1", 0, requested(1))
    before = _counts(log)
    with pytest.raises(ConcurrencyError, match="j1"):
        log.append_batch(
            [
                Append("j2", 0, [requested(2)]),
                Append("j3", 0, [requested(3), JobStarted(attempt=1)]),
                Append("j1", 5, [JobStarted(attempt=1)]),
            ]
        )
    assert _counts(log) == before
    assert list(log.read(stream_id="j2")) == []


def test_group_commit_is_all_or_nothing_when_the_views_refuse(log, views):
    log.append("j1", 0, requested(1))
    before = _counts(log)
    with pytest.raises(IntegrityError, match="unknown job ghost"):
        log.append_batch(
            [Append("j2", 0, [requested(2)]), Append("ghost", 0, [JobProgressed(rows=1)])]
        )
    assert _counts(log) == before
    assert views.checkpoint() == 1


def test_one_batch_may_append_to_one_stream_twice(log, views):
    recorded = log.append_batch(
        [Append("j1", 0, [requested(1)]), Append("j1", 1, [JobStarted(attempt=1)])]
    )
    assert [r.version for r in recorded] == [1, 2]
    assert views.load("j1")["status"] == "running"


def test_an_unknown_event_type_in_the_log_is_an_error(tmp_path, log):
    log.append("j1", 0, requested(1))
    forge(log.path, [("j1", ("JobTeleported", '{"to": "mars"}'), "2026-11-29T00:00:00.000Z")])
    with pytest.raises(IntegrityError, match="unknown event type 'JobTeleported'"):
        list(log.read())
    assert log.first_bad_seq() == (2, "unknown event type 'JobTeleported' in the log")


def test_only_the_log_s_own_event_types_can_be_appended(log):
    class JobTeleported(JobStarted):
        type = "JobTeleported"

    with pytest.raises(IntegrityError, match="not an event type"):
        log.append("j1", 0, requested(1), JobTeleported(attempt=1))
    assert log.count() == 0


def test_decode_refuses_unknown_and_missing_fields():
    with pytest.raises(IntegrityError, match="unknown fields"):
        decode("JobProgressed", '{"rows": 1, "colour": "red"}')
    with pytest.raises(IntegrityError, match="lacks fields"):
        decode("JobProgressed", "{}")
    with pytest.raises(IntegrityError, match="not JSON"):
        decode("JobProgressed", "{rows")
    with pytest.raises(IntegrityError, match="not a JSON object"):
        decode("JobProgressed", "[1]")
    assert decode("JobStarted", '{"attempt": 2}') == JobStarted(attempt=2)  # default filled


def _chain_log(log: EventLog) -> None:
    for n in range(1, 6):
        log.append(f"j{n}", 0, requested(n))
    for n in range(1, 6):
        log.append(f"j{n}", 1, JobStarted(attempt=1))
    assert log.last_seq() == 10


def test_the_chain_catches_an_edited_event(log):
    _chain_log(log)
    drop_guards(log.path)
    raw = sqlite3.connect(log.path)
    raw.execute('UPDATE events SET data = \'{"attempt": 2, "owner": null}\' WHERE seq = 7')
    raw.commit()
    raw.close()
    seq, why = log.first_bad_seq()
    assert (seq, why) == (7, "hash does not match its content and the previous event")


def test_the_chain_catches_a_deleted_event(log):
    _chain_log(log)
    drop_guards(log.path)
    raw = sqlite3.connect(log.path)
    raw.execute("DELETE FROM events WHERE seq = 4")
    raw.commit()
    raw.close()
    assert log.first_bad_seq() == (4, "seq 4 is missing (next stored is 5)")


def test_the_chain_catches_reordered_events(log):
    _chain_log(log)
    drop_guards(log.path)
    raw = sqlite3.connect(log.path)
    raw.executescript(
        "UPDATE events SET seq = -1 WHERE seq = 3; UPDATE events SET seq = 3 WHERE seq = 8;"
        "UPDATE events SET seq = 8 WHERE seq = -1;"
    )
    raw.close()
    assert log.first_bad_seq()[0] == 3


def test_opening_a_missing_log_without_create_fails_and_creates_nothing(tmp_path):
    path = tmp_path / "nothing" / "events.db"
    with pytest.raises(StorageError, match="no event log"):
        EventLog(path, create=False)
    assert not path.exists()


def test_recorded_times_never_go_back_along_the_log(log):
    log.append("j1", 0, requested(1))
    forge(log.path, [("j2", requested(2), "2999-01-01T00:00:00.000Z")])  # a clock far ahead
    [rec] = log.append("j1", 1, JobStarted(attempt=1))
    assert rec.recorded_at == "2999-01-01T00:00:00.000Z"
    assert log.first_bad_seq() is None
