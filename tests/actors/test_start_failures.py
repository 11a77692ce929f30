"""A job whose start keeps failing does not hold back the queue (issue 10 item 11)."""

from __future__ import annotations

import pytest

from silverexport import ExportRequest, JobStatus
from silverexport.config import MAX_ATTEMPTS

from .conftest import WAIT, GatedWriter, transfer_rows, wait_until


@pytest.mark.sqlite_log  # raw SQL on the SQLite log file
def test_a_job_that_cannot_start_fails_with_the_reason_and_the_others_run(open_system):
    writer = GatedWriter()
    system = open_system(max_concurrent_exports=1, export_fn=writer)
    system.store.ingest("token_transfers", transfer_rows(10))
    first = system.submit(ExportRequest(dataset="token_transfers", format="csv"))
    wait_until(writer.started.is_set, what="the first job to hold the only slot")
    bad = system.submit(ExportRequest(dataset="token_transfers", format="csv", target_id="t1"))
    good = [
        system.submit(ExportRequest(dataset="token_transfers", format="jsonl")) for _ in range(2)
    ]
    assert bad.status is JobStatus.QUEUED
    # The database refuses this one job's start, every time (as a broken disk page might).
    system.log.db.execute(
        "CREATE TRIGGER refuse_start BEFORE INSERT ON events "
        f"WHEN NEW.type = 'JobStarted' AND NEW.stream_id = '{bad.job_id}' "
        "BEGIN SELECT RAISE(ABORT, 'this job cannot start'); END"
    )
    writer.gate.set()
    for job in [first, *good]:
        assert system.wait(job.job_id, timeout=WAIT).status is JobStatus.COMPLETED
    failed = system.wait(bad.job_id, timeout=WAIT)
    assert failed.status is JobStatus.FAILED
    assert f"after {MAX_ATTEMPTS} tries" in failed.error
    assert "this job cannot start" in failed.error
    types = [e.event.type for e in system.events(bad.job_id)]
    assert types == ["JobRequested", "JobFailed"]  # no start, and exactly one outcome
