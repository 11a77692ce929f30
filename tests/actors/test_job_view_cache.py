"""Finished jobs read from the views are answered from memory afterwards, never stale."""

from __future__ import annotations

from dataclasses import replace

from silverexport import ExportSystem, JobStatus
from silverexport.job_view_cache import JobViewCache

from .conftest import transfer_rows
from .history import finished_jobs, write_jobs


def _old_job_system(tmp_path, retention=None, **options) -> tuple[ExportSystem, str]:
    data_dir = tmp_path / "data"
    with ExportSystem.open(data_dir) as system:
        system.store.ingest("token_transfers", transfer_rows(5))
    write_jobs(data_dir / "events.db", finished_jobs(3, retention=retention))
    return ExportSystem.open(data_dir, **options), f"{1:032x}"


def test_an_old_job_read_once_is_answered_from_memory(tmp_path):
    system, old = _old_job_system(tmp_path, run_jobs=False)
    with system:
        assert system.cached_status(old) is None  # start-up held only active jobs
        view = system.status(old, tenant="old")
        assert view.status is JobStatus.COMPLETED
        assert system.cached_status(old, tenant="old") == view
        assert system.cached_status(old, tenant="someone-else") is None


def test_an_expiry_replaces_the_cached_view(tmp_path):
    system, old = _old_job_system(tmp_path, retention=0, run_jobs=False)
    with system:
        assert system.status(old).status is JobStatus.COMPLETED  # now cached
        assert old in system.prune()
        assert system.status(old).status is JobStatus.EXPIRED
        assert system.cached_status(old).status is JobStatus.EXPIRED


def _views(system: ExportSystem, job_id: str):
    view = system.status(job_id)
    return view, replace(view, status=JobStatus.EXPIRED)


def test_a_read_overtaken_by_an_expiry_is_not_kept(tmp_path):
    system, old = _old_job_system(tmp_path, run_jobs=False)
    with system:
        completed, expired = _views(system, old)
    cache = JobViewCache(4)

    def read_while_it_expires():
        cache.publish(expired)  # the supervisor's news lands while the read is in flight
        cache.recent.clear()  # ...and was evicted since, the worst case
        return completed

    assert cache.read_through(read_while_it_expires) is completed
    assert cache.get(old) is None  # the stale completed view was not kept
    assert cache.read_through(lambda: completed) is completed
    assert cache.get(old) is completed  # nothing overtook this read: kept


def test_an_expired_view_is_always_kept_and_a_newer_one_never_replaced(tmp_path):
    system, old = _old_job_system(tmp_path, run_jobs=False)
    with system:
        completed, expired = _views(system, old)
    cache = JobViewCache(4)

    def read_racing_an_expiry():
        cache.publish(replace(expired, job_id="other"))
        return expired

    assert cache.read_through(read_racing_an_expiry) is expired
    assert cache.get(old) is expired
    cache.read_through(lambda: completed)  # an older read arriving late
    assert cache.get(old) is expired


def test_read_through_stays_within_its_bound(tmp_path):
    system, old = _old_job_system(tmp_path, run_jobs=False)
    with system:
        completed, _ = _views(system, old)
    cache = JobViewCache(2)
    for i in range(5):
        cache.read_through(lambda i=i: replace(completed, job_id=f"j{i}"))
    assert list(cache.recent) == ["j3", "j4"]
    queued = replace(completed, job_id="q", status=JobStatus.QUEUED)
    assert cache.read_through(lambda: queued) is queued
    assert cache.get("q") is None  # active jobs come from the supervisor's news only
