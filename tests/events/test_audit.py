"""Audit: history, state as of a seq or time, verify's findings, rebuild with progress —
on every backend."""

from __future__ import annotations

import pytest

from silverexport.errors import IntegrityError
from silverexport.events.audit import history, rebuild, states_at, verify
from silverexport.events.backends import open_views
from silverexport.events.log import EventLog
from silverexport.events.types import JobCompleted, JobProgressed, JobStarted

from .lifecycles import random_log, requested

T1, T2, T3 = "2026-11-01T10:00:00.000Z", "2026-11-01T11:00:00.000Z", "2026-11-01T12:00:00.000Z"


@pytest.fixture
def timed_log(backend, log) -> EventLog:
    """j1 requested at T1, started at T2, done at T3; j2 requested at T2."""
    done = JobCompleted(rows=1, bytes=2, sha256="c" * 64, truncated=False, file_name="f")
    backend.forge(
        [
            ("j1", requested(1), T1),
            ("j1", JobStarted(attempt=1), T2),
            ("j2", requested(2), T2),
            ("j1", done, T3),
        ],
    )
    log.projector.catch_up(log.read)
    return log


def test_history_is_one_job_s_events_in_order(log):
    log.append("j1", 0, requested(1))
    log.append("j2", 0, requested(2))
    log.append("j1", 1, JobStarted(attempt=1), JobProgressed(rows=4))
    assert [(r.seq, r.type) for r in history(log, "j1")] == [
        (1, "JobRequested"),
        (3, "JobStarted"),
        (4, "JobProgressed"),
    ]
    assert history(log, "nope") == []


def test_states_as_of_a_seq(timed_log):
    at2 = states_at(timed_log, seq=2)
    assert list(at2) == ["j1"] and at2["j1"]["status"] == "running"
    assert states_at(timed_log, seq=0) == {}
    assert states_at(timed_log, seq=4, job_id="j2")["j2"]["status"] == "queued"


def test_states_as_of_a_time_are_the_log_prefix_recorded_by_then(timed_log):
    assert states_at(timed_log, time="2026-11-01T09:59:59Z") == {}
    at_t1 = states_at(timed_log, time="2026-11-01T11:30:00+01:00")  # = T1 + 30 min
    assert {k: s["status"] for k, s in at_t1.items()} == {"j1": "queued"}
    at_t2 = states_at(timed_log, time=T2)
    assert {k: s["status"] for k, s in at_t2.items()} == {"j1": "running", "j2": "queued"}
    assert states_at(timed_log, time=T3)["j1"]["status"] == "completed"


def test_verify_passes_a_sound_log_and_leaves_it_untouched(log, views):
    random_log(log, jobs=200)
    before = (log.count(), log.last_seq())
    report = verify(log, views)
    assert report.ok, report.problems
    assert (report.events, report.last_seq, report.jobs) == (*before, 200)
    assert (log.count(), log.last_seq()) == before  # the guard probe was rolled back


def _tamper(backend, *sql: str) -> None:
    backend.drop_guards()
    backend.raw(*sql)
    backend.open().close()  # a normal open puts the guards back


@pytest.mark.parametrize(
    ("sql", "first_bad"),
    [
        (["UPDATE events SET recorded_at = '2020-01-01T00:00:00.000Z' WHERE seq = 120"], 120),
        (["DELETE FROM events WHERE seq = 77"], 77),
        (
            [
                "UPDATE events SET seq = -1 WHERE seq = 30",
                "UPDATE events SET seq = 30 WHERE seq = 31",
                "UPDATE events SET seq = 31 WHERE seq = -1",
            ],
            30,
        ),
    ],
    ids=["edited", "deleted", "reordered"],
)
def test_verify_names_the_first_bad_seq_of_a_tampered_chain(backend, log, views, sql, first_bad):
    random_log(log, jobs=100)
    _tamper(backend, *sql)
    report = verify(log, views)
    assert not report.ok
    assert report.first_bad_seq == first_bad
    assert report.problems[0].check == "chain" and report.problems[0].seq == first_bad


def test_verify_reports_missing_guards(backend, log, views):
    log.append("j1", 0, requested(1))
    backend.drop_guards()
    report = verify(log, views)
    messages = [p.message for p in report.problems]
    assert "append-only trigger events_no_update is missing" in messages
    assert "the database accepted an UPDATE on events" in messages
    assert "the database accepted a DELETE on events" in messages
    assert log.count() == 1


def test_verify_reports_guards_that_are_present_but_do_nothing(backend, log, views):
    log.append("j1", 0, requested(1))
    backend.raw(*backend.hollow_delete_guard)
    report = verify(log, views)
    assert [p.message for p in report.problems] == ["the database accepted a DELETE on events"]


def test_verify_names_the_first_job_whose_view_differs(backend, log, views):
    random_log(log, jobs=100)
    stored = views.load_all()
    a, b = sorted(stored.values(), key=lambda s: s["last_seq"])[10:12]
    backend.raw(
        f"UPDATE jobs SET status = 'completed', rows = -1 WHERE job_id = '{a['job_id']}'",
        f"DELETE FROM jobs WHERE job_id = '{b['job_id']}'",
    )
    report = verify(log, views)
    [problem] = report.problems
    assert (problem.check, problem.job_id, problem.seq) == ("views", a["job_id"], a["last_seq"])
    assert "rows (views -1" in problem.message and "and 1 more jobs" in problem.message
    rebuild(log, views)
    assert verify(log, views).ok


def test_verify_catches_a_view_row_pointing_at_another_jobs_request(backend, log, views):
    """A row's request fields come from the JobRequested its key names; a wrong key is caught."""
    random_log(log, jobs=20)
    a, b = sorted(views.load_all().values(), key=lambda s: s["created_seq"])[3:5]
    backend.raw(
        f"DELETE FROM jobs WHERE created_seq = {b['created_seq']}",
        f"UPDATE jobs SET created_seq = {b['created_seq']} WHERE created_seq = {a['created_seq']}",
    )
    assert a["job_id"] not in views.load_all()  # the row no longer joins to its own request
    report = verify(log, views)
    assert [p.check for p in report.problems] == ["views"]
    assert report.problems[0].job_id in (a["job_id"], b["job_id"])
    rebuild(log, views)
    assert verify(log, views).ok and views.load(a["job_id"]) == a


def test_verify_reports_views_behind_the_log(backend, log, views):
    log.append("j1", 0, requested(1))
    bare = backend.open()  # another process, without views
    bare.append("j1", 1, JobStarted(attempt=1))
    bare.close()
    report = verify(log, views)
    assert report.first_bad_seq == 2
    assert "checkpoint is seq 1 but the log ends at seq 2" in report.problems[0].message


def test_verify_reports_missing_views_tables(backend, log):
    log.append("j1", 0, requested(1))
    backend.raw("DROP TABLE jobs")
    report = verify(log, open_views(log, create=False))
    assert [p.check for p in report.problems] == ["views"]


def test_rebuild_reports_progress_and_counts_events(backend, log, views):
    random_log(log, jobs=1000)
    seen: list[int] = []
    assert rebuild(log, views, seen.append) == log.count()
    assert seen == sorted(seen) and seen[-1] == log.count() and len(seen) > 1
    assert backend.durable(log) == backend.expected_durable  # durable again afterwards


def test_a_history_that_does_not_fold_is_found_and_not_rebuilt(backend, log, views):
    log.append("j1", 0, requested(1))
    backend.forge([("ghost", JobStarted(attempt=1), "2026-11-29T00:00:00.000Z")])
    report = verify(log, views)
    [problem] = [p for p in report.problems if p.check == "views" and p.job_id == "ghost"]
    assert problem.seq == 2 and "JobStarted for unknown job ghost" in problem.message
    with pytest.raises(IntegrityError, match="seq 2: JobStarted for unknown job ghost"):
        rebuild(log, views)
    assert views.checkpoint() == 1  # the failed rebuild left the old views whole


def test_an_unknown_event_type_stops_verify_and_rebuild_at_its_seq(backend, log, views):
    log.append("j1", 0, requested(1))
    backend.forge([("j1", ("JobTeleported", "{}"), "2026-11-29T00:00:00.000Z")])
    assert verify(log, views).first_bad_seq == 2
    with pytest.raises(IntegrityError, match="unknown event type 'JobTeleported'"):
        rebuild(log, views)
