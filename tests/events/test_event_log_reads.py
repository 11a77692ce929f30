"""The port's narrower reads, on every backend: by event type (the webhooks' streams, through
their partial index), bounded by a row count, whether a stream exists, and readers that say
when they are lost."""

from __future__ import annotations

import pytest

from silverexport.events.log import SPARSE_TYPES, Append, types_clause
from silverexport.events.types import JobStarted, WebhookDeleted, WebhookRegistered

from .lifecycles import requested


def hook(n: int) -> WebhookRegistered:
    return WebhookRegistered(tenant="alice", url=f"https://h{n}.test/", events=[], secret="s")


def test_reading_by_type_keeps_only_those_events_in_seq_order(log):
    log.append("j1", 0, requested(1))
    log.append("wh_1", 0, hook(1))
    log.append("j1", 1, JobStarted(attempt=1))
    log.append("wh_2", 0, hook(2))
    log.append("wh_1", 1, WebhookDeleted())

    webhook_rows = list(log.read_raw(types=SPARSE_TYPES))
    assert [(r[0], r[1], r[3]) for r in webhook_rows] == [
        (2, "wh_1", "WebhookRegistered"),
        (4, "wh_2", "WebhookRegistered"),
        (5, "wh_1", "WebhookDeleted"),
    ]
    assert webhook_rows == [r for r in log.read_raw() if r[3] in SPARSE_TYPES]  # whole rows
    assert [r.seq for r in log.read(2, upto_seq=4, types=SPARSE_TYPES)] == [4]
    assert [r.seq for r in log.read(types={"JobStarted"})] == [3]
    assert list(log.read(types={"JobStarted"}, stream_id="wh_1")) == []


def test_a_limit_bounds_the_rows_read_across_pages(log):
    log.append_batch([Append(f"j{n}", 0, [requested(n)]) for n in range(2100)])
    assert [r[0] for r in log.read_raw(limit=3)] == [1, 2, 3]
    assert [r[0] for r in log.read_raw(2090, limit=50)] == list(range(2091, 2101))
    assert len(list(log.read_raw(5, limit=2050))) == 2050  # past one page of the adapter
    assert list(log.read_raw(limit=0)) == []


def test_stream_exists_and_readers_stay_usable(log):
    assert not log.stream_exists("wh_1")
    log.append("wh_1", 0, hook(1))
    assert log.stream_exists("wh_1") and not log.stream_exists("wh_2")
    reader = log.open_reader()
    try:
        assert log.reader_ok(reader)
        assert [r.stream_id for r in log.read_from(reader)] == ["wh_1"]
    finally:
        reader.close()


def test_types_must_be_event_types_of_the_log():
    with pytest.raises(ValueError, match="DROP TABLE"):
        types_clause({"WebhookDeleted", "x'); DROP TABLE events; --"})
    with pytest.raises(ValueError):
        types_clause(set())
    assert types_clause(["WebhookDeleted", "WebhookRegistered", "WebhookDeleted"]) == (
        "type IN ('WebhookDeleted', 'WebhookRegistered')"
    )


def test_sqlite_reads_the_webhook_types_through_their_partial_index(sqlite_backend):
    log = sqlite_backend.open()
    try:
        log.append("wh_1", 0, hook(1))
        sql = f"SELECT seq FROM events WHERE seq > 0 AND {types_clause(SPARSE_TYPES)} ORDER BY seq"
        plan = " ".join(row[-1] for row in log.db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "events_webhooks" in plan, plan
    finally:
        log.close()
