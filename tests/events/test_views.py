"""The job views: incremental equals rebuilt equals replayed, and start-up catch-up."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from silverexport.errors import IntegrityError
from silverexport.events import fold as fold_module
from silverexport.events import views as views_module
from silverexport.events.audit import rebuild, verify
from silverexport.events.backends import open_views
from silverexport.events.log import EventLog
from silverexport.events.types import (
    EVENT_TYPES,
    JobCancelled,
    JobCompleted,
    JobExpired,
    JobFailed,
    JobProgressed,
    JobStarted,
    RecordedEvent,
)
from silverexport.events.views import (
    CATCH_UP_CHUNK,
    JOBS_TABLE,
    fold,
    fresh_states,
    normalised,
    to_view,
)
from silverexport.model import JobStatus

from .lifecycles import random_log, requested


def _replayed(log: EventLog) -> dict:
    return normalised(fresh_states(log.read())[0])


def test_rebuilt_views_equal_incremental_ones_for_thousands_of_interleaved_jobs(log, views):
    finals = random_log(log, jobs=3000)
    states = views.load_all()
    failed_then_retried = sum(1 for s in states.values() if s["error"] and s["status"] != "failed")
    assert set(Counter(finals.values())) == {s.value for s in JobStatus}
    assert failed_then_retried > 0
    assert len(states) == 3000 and views.checkpoint() == log.last_seq()
    assert states == _replayed(log)

    assert rebuild(log, views) == log.count()
    assert views.load_all() == states
    assert views.checkpoint() == log.last_seq()
    assert {s["job_id"]: s["status"] for s in states.values()} == finals
    assert verify(log, views).ok


def test_every_event_type_has_its_branch_of_the_fold():
    jobs = {t for t in EVENT_TYPES if t.startswith("Job")}  # other streams' types are not jobs'
    assert {*fold_module._APPLY, fold_module._REQUESTED} == jobs == fold_module.JOB_EVENT_TYPES


@pytest.mark.parametrize(
    "event",
    [
        JobStarted(attempt=1, owner="o"),
        JobProgressed(rows=5),
        JobCompleted(rows=1, bytes=2, sha256="s", truncated=True, file_name="f"),
        JobFailed(error="e", attempt=1, will_retry=True),
        JobFailed(error="e", attempt=3, will_retry=False, retention_seconds=60.0),
        JobCancelled(reason="r"),
        JobExpired(),
    ],
    ids=lambda e: e.type,
)
def test_only_the_request_sets_the_columns_an_update_leaves_alone(event):
    t0, t1 = "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z"
    state = fold(None, RecordedEvent(1, "j1", 1, requested(1, key="k"), t0, "h"))
    fixed = {c: state[c] for c in views_module._FIXED}
    after = fold(state, RecordedEvent(2, "j1", 2, event, t1, "h"))
    assert {c: after[c] for c in views_module._FIXED} == fixed


def test_fold_is_pure(log):
    rec_requested, rec_started = log.append("j1", 0, requested(1), JobStarted(attempt=1))
    state = fold(None, rec_requested)
    snapshot = dict(state)
    after = fold(state, rec_started)
    assert state == snapshot
    assert (state["status"], after["status"]) == ("queued", "running")
    assert to_view(after).to_document()["status"] == "running"


_OTHER_PROCESS = textwrap.dedent(
    """
    from silverexport.config import Settings
    from silverexport.events.backends import open_event_log
    from silverexport.events.log import Append
    from silverexport.events.types import JobCompleted, JobProgressed, JobStarted
    from tests.events.lifecycles import requested

    log = open_event_log(Settings.from_env())  # no views: a process that only appends
    log.append_batch([
        Append("j1", 2, [JobProgressed(rows=5), JobCompleted(
            rows=5, bytes=50, sha256="ab" * 32, truncated=False, file_name="j1.csv")]),
        Append("j9", 0, [requested(9), JobStarted(attempt=1)]),
    ])
    log.close()
    """
)


def test_start_up_catches_up_with_what_another_process_appended(backend, log, views):
    log.append("j1", 0, requested(1), JobStarted(attempt=1))
    log.append("j2", 0, requested(2))
    subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS],
        check=True,
        cwd=Path(__file__).parents[2],  # so that `tests.events` imports
        env={**os.environ, **backend.settings_env()},
        timeout=60,
    )
    assert views.checkpoint() == 3 and log.last_seq() == 7

    reopened = backend.open()
    fresh_views = open_views(reopened)
    reopened.projector = fresh_views
    try:
        assert fresh_views.catch_up(reopened.read) == 4
        assert fresh_views.checkpoint() == 7
        assert fresh_views.load("j1")["status"] == "completed"
        assert fresh_views.load("j9")["status"] == "running"
        assert fresh_views.load_all() == _replayed(reopened)
        assert fresh_views.catch_up(reopened.read) == 0
    finally:
        reopened.close()


def test_an_append_through_the_views_first_catches_up_on_what_it_missed(backend, log, views):
    log.append("j1", 0, requested(1))
    bare = backend.open()
    bare.append("j1", 1, JobStarted(attempt=1))
    bare.append("j2", 0, requested(2))
    bare.close()
    log.append("j1", 2, JobProgressed(rows=3))
    assert views.checkpoint() == 4
    assert views.load_all() == _replayed(log)
    assert views.load("j1")["rows"] == 3


def test_views_of_an_older_shape_are_dropped_and_caught_up_in_chunks(backend, log, views):
    random_log(log, jobs=2500)
    assert log.count() > CATCH_UP_CHUNK
    backend.raw(f"ALTER TABLE {JOBS_TABLE} DROP COLUMN owner")
    again = open_views(log)
    assert again.checkpoint() == 0 and again.load_all() == {}
    assert again.catch_up(log.read) == log.count()
    assert again.load_all() == _replayed(log)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_replay_gives_back_the_cycle_collector_as_it_found_it(log, enabled):
    """A replay pauses the cycle collector for speed; it must restore it, even on failure."""
    random_log(log, jobs=20)
    good = list(log.read_batches(with_hash=False))
    bad = [[(10**9, "nobody", 2, JobStarted.type, '{"attempt":1,"owner":null}', "t")]]
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        states, _, count = views_module.replay(good)
        assert gc.isenabled() is enabled and count == log.count() and len(states) == 20
        with pytest.raises(IntegrityError, match="for unknown job nobody"):
            views_module.replay(bad)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_a_batch_the_views_refuse_leaves_log_and_views_as_they_were(log, views):
    from silverexport.events.log import Append

    log.append("j1", 0, requested(1))
    before = (log.count(), views.load_all())
    with pytest.raises(IntegrityError, match="unknown job ghost"):
        log.append_batch(
            [Append("j2", 0, [requested(2)]), Append("ghost", 0, [JobProgressed(rows=1)])]
        )
    assert (log.count(), views.load_all()) == before
    assert views.checkpoint() == 1


def test_views_follow_one_batch_that_appends_to_one_stream_twice(log, views):
    from silverexport.events.log import Append

    log.append_batch([Append("j1", 0, [requested(1)]), Append("j1", 1, [JobStarted(attempt=1)])])
    assert views.load("j1")["status"] == "running"
