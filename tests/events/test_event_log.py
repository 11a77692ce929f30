"""The event-log contract, on every backend: append-only by the database, optimistic
concurrency, all-or-nothing group commit, one idempotency key per tenant, the chain."""

from __future__ import annotations

import pytest

from silverexport.errors import ConcurrencyError, IntegrityError, StorageError
from silverexport.events.log import APPEND_ONLY_MESSAGE, Append, EventLog
from silverexport.events.types import JobProgressed, JobStarted, RecordedEvent, decode

from .lifecycles import requested


def _state(log: EventLog) -> tuple[int, int, list[tuple]]:
    return log.count(), log.last_seq(), list(log.read_raw())


class Refusing:
    """A projector that refuses the batch, as the views refuse an event for no known job."""

    def __init__(self) -> None:
        self.seen: list[list[RecordedEvent]] = []

    def project(self, tx, recorded: list[RecordedEvent]) -> None:
        self.seen.append(recorded)
        if any(r.stream_id == "ghost" for r in recorded):
            raise IntegrityError("unknown job ghost")


def test_the_adapter_has_every_member_of_the_port(log):
    assert isinstance(log, EventLog)
    assert "***" in log.location or "://" not in log.location  # never a password


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
    assert list(log.stream_ids()) == ["j1", "j2"]
    assert (log.count(), log.last_seq()) == (3, 3)
    assert [row for batch in log.read_batches(1) for row in batch] == list(log.read_raw(1))
    assert log.first_bad_seq() is None


def test_the_connection_commits_durably(backend, log):
    assert backend.durable(log) == backend.expected_durable


def test_the_database_itself_refuses_update_delete_and_truncate(backend, log):
    log.append("j1", 0, requested(1))
    before = _state(log)
    for sql in backend.destructive:  # not our code: the refusal lives in the database
        with pytest.raises(backend.raw_error, match=APPEND_ONLY_MESSAGE):
            backend.raw(sql)
    assert _state(log) == before
    assert log.missing_guards() == [] and log.guard_problems() == []
    assert log.first_bad_seq() is None


def test_a_second_writer_of_the_same_version_is_refused_by_the_database(backend, log):
    log.append("j1", 0, requested(1))
    with pytest.raises(backend.raw_error, match=backend.unique_refusal):
        backend.raw("INSERT INTO events VALUES (99, 'j1', 1, 'JobStarted', '{}', 'now', 'x')")


def test_a_stale_expected_version_is_a_concurrency_error_and_writes_nothing(log):
    log.append("j1", 0, requested(1))
    before = _state(log)
    with pytest.raises(ConcurrencyError, match="j1 is at version 1, not 0"):
        log.append("j1", 0, JobStarted(attempt=1))
    assert _state(log) == before


def test_two_event_logs_on_one_store_race_for_a_version(backend, log):
    log.append("j1", 0, requested(1))
    other = backend.open()  # a second process's connection, no views
    try:
        # Both believe j1 is at version 1; the first to commit wins.
        other.append("j1", 1, JobStarted(attempt=1, owner="other"))
        before = _state(log)
        with pytest.raises(ConcurrencyError):
            log.append("j1", 1, JobStarted(attempt=1, owner="me"))
        assert _state(log) == before
        assert [r.event for r in log.read(stream_id="j1")][-1].owner == "other"
    finally:
        other.close()


def test_the_log_refuses_a_second_request_with_one_tenant_s_idempotency_key(backend, log):
    """The guard is the log's own: a process appending without views meets it too."""
    log.append("j1", 0, requested(1, tenant="alice", key="k"))
    bare = backend.open()  # another process, no views
    try:
        before = _state(log)
        for appender in (bare, log):
            with pytest.raises(ConcurrencyError, match="another writer appended first"):
                appender.append_batch(
                    [Append("j9", 0, [requested(9)]), Append("j2", 0, [requested(2, key="k")])]
                )
            assert _state(log) == before  # all or nothing: j9 is not written either
        # Another tenant's key, no key at all (many times), and the same key's own job go in.
        log.append("j2", 0, requested(2, tenant="bob", key="k"))
        log.append_batch([Append("j3", 0, [requested(3)]), Append("j4", 0, [requested(4)])])
        log.append("j1", 1, JobStarted(attempt=1))
        assert log.count() == before[0] + 4
        assert log.idempotent_stream("alice", "k") == "j1"
        assert log.idempotent_stream("bob", "k") == "j2"
        assert log.idempotent_stream("carol", "k") is None
    finally:
        bare.close()


def test_opening_a_log_whose_requests_share_a_key_names_the_problem(backend, log):
    log.append("j1", 0, requested(1, key="k"))
    backend.raw("DROP INDEX events_idempotency")  # as a log written without the guard was
    log.append("j2", 0, requested(2, key="k"))
    with pytest.raises(IntegrityError, match="two requests of one tenant share an idempotency"):
        backend.open()


def test_group_commit_is_all_or_nothing_on_a_version_conflict(log):
    log.append("j1", 0, requested(1))
    before = _state(log)
    with pytest.raises(ConcurrencyError, match="j1"):
        log.append_batch(
            [
                Append("j2", 0, [requested(2)]),
                Append("j3", 0, [requested(3), JobStarted(attempt=1)]),
                Append("j1", 5, [JobStarted(attempt=1)]),
            ]
        )
    assert _state(log) == before
    assert list(log.read(stream_id="j2")) == []


def test_group_commit_is_all_or_nothing_when_the_projector_refuses(backend):
    log = backend.open()
    try:
        log.projector = projector = Refusing()
        log.append("j1", 0, requested(1))
        before = _state(log)
        with pytest.raises(IntegrityError, match="unknown job ghost"):
            log.append_batch(
                [Append("j2", 0, [requested(2)]), Append("ghost", 0, [JobProgressed(rows=1)])]
            )
        assert _state(log) == before
        # The projector saw each batch whole, with the seqs the log gave it.
        assert [[(r.seq, r.stream_id) for r in b] for b in projector.seen] == [
            [(1, "j1")],
            [(2, "j2"), (3, "ghost")],
        ]
        [again] = log.append("j2", 0, requested(2))
        assert again.seq == 2  # the refused batch left no gap
    finally:
        log.close()


def test_one_batch_may_append_to_one_stream_twice(log):
    recorded = log.append_batch(
        [Append("j1", 0, [requested(1)]), Append("j1", 1, [JobStarted(attempt=1)])]
    )
    assert [r.version for r in recorded] == [1, 2]
    assert [type(r.event).__name__ for r in log.read(stream_id="j1")] == [
        "JobRequested",
        "JobStarted",
    ]


def test_an_unknown_event_type_in_the_log_is_an_error(backend, log):
    log.append("j1", 0, requested(1))
    backend.forge([("j1", ("JobTeleported", '{"to": "mars"}'), "2026-11-29T00:00:00.000Z")])
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


def test_the_chain_catches_an_edited_event(backend, log):
    _chain_log(log)
    backend.drop_guards()
    backend.raw('UPDATE events SET data = \'{"attempt": 2, "owner": null}\' WHERE seq = 7')
    seq, why = log.first_bad_seq()
    assert (seq, why) == (7, "hash does not match its content and the previous event")


def test_the_chain_catches_a_deleted_event(backend, log):
    _chain_log(log)
    backend.drop_guards()
    backend.raw("DELETE FROM events WHERE seq = 4")
    assert log.first_bad_seq() == (4, "seq 4 is missing (next stored is 5)")


def test_the_chain_catches_reordered_events(backend, log):
    _chain_log(log)
    backend.drop_guards()
    backend.raw(
        "UPDATE events SET seq = -1 WHERE seq = 3",
        "UPDATE events SET seq = 3 WHERE seq = 8",
        "UPDATE events SET seq = 8 WHERE seq = -1",
    )
    assert log.first_bad_seq()[0] == 3


def test_guards_dropped_by_hand_are_reported_and_then_accept_writes(backend, log):
    log.append("j1", 0, requested(1))
    backend.drop_guards()
    assert len(log.missing_guards()) == len(backend.destructive)
    assert {p.split(" on ")[0] for p in log.guard_problems()} == {
        f"the database accepted {verb}"
        for verb in ("an UPDATE", "a DELETE", "a TRUNCATE")[: len(backend.destructive)]
    }
    assert log.count() == 1  # the probe was rolled back
    backend.open().close()  # a normal open puts the guards back
    assert log.missing_guards() == [] and log.guard_problems() == []


def test_opening_a_missing_log_without_create_fails_and_creates_nothing(backend):
    with pytest.raises(StorageError, match="no event log"):
        backend.open(create=False)
    assert not backend.exists()


def test_recorded_times_never_go_back_along_the_log(backend, log):
    log.append("j1", 0, requested(1))
    backend.forge([("j2", requested(2), "2999-01-01T00:00:00.000Z")])  # a clock far ahead
    [rec] = log.append("j1", 1, JobStarted(attempt=1))
    assert rec.recorded_at == "2999-01-01T00:00:00.000Z"
    assert log.first_bad_seq() is None
