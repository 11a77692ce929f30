"""Jobs through real actors, real SQLite files and real export files."""

from __future__ import annotations

import hashlib
import threading

import pytest

from silverexport import ExportRequest, JobStatus
from silverexport.errors import ConflictError, NotFoundError, ValidationError
from silverexport.silver import writers
from tests.stored import stored_bytes

from .conftest import GatedWriter, transfer_rows, wait_until


def test_full_lifecycle_produces_a_whole_file_and_its_history(open_system):
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(50))
    job = system.submit(ExportRequest(dataset="token_transfers", format="csv"), tenant="alice")
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED)
    done = system.wait(job.job_id, timeout=30)
    assert done.status is JobStatus.COMPLETED
    assert (done.rows, done.truncated, done.attempts) == (50, False, 1)
    assert done.file_name == f"{job.job_id}.a1.csv"  # attempt 1's own name
    body = stored_bytes(system, done)
    assert done.bytes == len(body)
    assert done.sha256 == hashlib.sha256(body).hexdigest()
    assert done.expires_at is not None and done.finished_at is not None
    assert done.download_url == f"/v1/export/jobs/{job.job_id}/download"
    types = [e.type for e in system.events(job.job_id)]
    assert types[0] == "JobRequested" and types[1] == "JobStarted" and types[-1] == "JobCompleted"
    assert system.storage.list_partials() == []


def test_limit_and_max_records_truncate(open_system):
    system = open_system(max_records=30)
    system.store.ingest("token_transfers", transfer_rows(40))
    capped = system.submit(ExportRequest(dataset="token_transfers", format="jsonl"))
    limited = system.submit(ExportRequest(dataset="token_transfers", format="jsonl", limit=5))
    assert system.wait(capped.job_id).rows == 30 and system.wait(capped.job_id).truncated
    assert system.wait(limited.job_id).rows == 5
    with pytest.raises(ValidationError, match="limit"):
        system.submit(ExportRequest(dataset="token_transfers", format="jsonl", limit=31))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ExportRequest(dataset="nope", format="csv"), "dataset"),
        (ExportRequest(dataset="hl_fills", format="xml"), "format"),
        (ExportRequest(dataset="hl_fills", format="csv", compression="zip"), "compression"),
        (ExportRequest(dataset="hl_fills", format="csv", from_="yesterday"), "from"),
        (
            ExportRequest(
                dataset="hl_fills",
                format="csv",
                from_="2024-01-02T00:00:00Z",
                to="2024-01-01T00:00:00Z",
            ),
            "from",
        ),
        (ExportRequest(dataset="hl_fills", format="csv", limit=0), "limit"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_appended(open_system, request_, field):
    system = open_system()
    with pytest.raises(ValidationError) as info:
        system.submit(request_)
    assert info.value.field == field
    assert system.log.count() == 0


def test_idempotency_key_returns_the_first_job_or_conflicts(open_system):
    system = open_system()
    req = ExportRequest(dataset="hl_funding", format="csv", target_id="t1")
    first = system.submit_request(req, tenant="a", idempotency_key="k")
    again = system.submit_request(req, tenant="a", idempotency_key="k")
    other_tenant = system.submit_request(req, tenant="b", idempotency_key="k")
    assert first.created and not again.created and other_tenant.created
    assert again.job.job_id == first.job.job_id != other_tenant.job.job_id
    with pytest.raises(ConflictError):
        system.submit_request(
            ExportRequest(dataset="hl_funding", format="jsonl"), tenant="a", idempotency_key="k"
        )


def test_cancel_while_queued_and_while_running(open_system):
    writer = GatedWriter()
    system = open_system(max_concurrent_exports=1, export_fn=writer)
    system.store.ingest("token_transfers", transfer_rows(20))
    running = system.submit(ExportRequest(dataset="token_transfers", format="csv"))
    queued = system.submit(ExportRequest(dataset="token_transfers", format="jsonl"))
    assert writer.started.wait(10)
    assert system.status(queued.job_id).status is JobStatus.QUEUED

    cancelled = system.cancel(queued.job_id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.expires_at is not None

    assert system.cancel(running.job_id).status is JobStatus.CANCELLED
    wait_until(lambda: system.slots.usage().exports == 0, what="the slot to be freed")
    left = (system.storage.list(), system.storage.list_partials())
    assert left == ([], []), "partial file left behind"
    with pytest.raises(ConflictError, match="cancelled"):
        system.cancel(running.job_id)
    assert writer.calls == 1, "a cancelled queued job must never start"
    with pytest.raises(NotFoundError):
        system.cancel("0" * 32)


def test_other_tenants_jobs_do_not_exist_for_them(open_system):
    system = open_system()
    job = system.submit(ExportRequest(dataset="positions", format="csv"), tenant="alice")
    for call in (system.status, system.cancel, system.events):
        with pytest.raises(NotFoundError):
            call(job.job_id, tenant="bob")
    assert system.list(tenant="bob") == ([], None)


def test_a_crashing_writer_fails_the_job_and_frees_the_slot(open_system):
    def broken_writer(*args, **kwargs):
        raise OSError(28, "No space left on device")

    system = open_system(max_concurrent_exports=1, export_fn=broken_writer)
    failed = system.wait(system.submit(ExportRequest(dataset="hl_fills", format="csv")).job_id)
    assert failed.status is JobStatus.FAILED
    assert "No space left on device" in failed.error
    assert "Traceback" not in failed.error
    wait_until(lambda: system.slots.usage().exports == 0, what="the slot to be freed")
    events = system.events(failed.job_id)
    assert events[-1].type == "JobFailed" and events[-1].event.will_retry is False


def test_list_pages_newest_first_with_filters(open_system):
    system = open_system(max_concurrent_exports=1)
    ids = [
        system.submit(ExportRequest(dataset=ds, format="csv"), tenant="t").job_id
        for ds in ["hl_fills", "positions"] * 5
    ]
    seen, cursor = [], None
    while True:
        page, cursor = system.list(tenant="t", limit=3, cursor=cursor)
        seen += [v.job_id for v in page]
        if cursor is None:
            break
    assert seen == ids[::-1]
    fills, _ = system.list(tenant="t", dataset="hl_fills", limit=500)
    assert {v.job_id for v in fills} == set(ids[0::2])
    with pytest.raises(ValidationError):
        system.list(status="bogus")
    with pytest.raises(ValidationError):
        system.list(cursor="not-a-cursor")


def test_threads_stay_bounded_with_500_queued_jobs(open_system):
    writer = GatedWriter()
    before = threading.active_count()
    system = open_system(max_concurrent_exports=2, export_fn=writer)
    system.store.ingest("token_transfers", transfer_rows(5))
    for _ in range(500):
        system.submit(ExportRequest(dataset="token_transfers", format="csv"))
    assert writer.started.wait(10)
    # supervisor + timer + the webhook dispatcher and its database thread + at most two
    # export actors, each with its file-writer thread and its render readers (+ on PostgreSQL
    # the node's lease heartbeat and its LISTEN thread): a bound set by the slots, not the queue
    nodes = 2 if system.settings.event_log_url else 0
    per_export = 2 + writers.READERS
    assert threading.active_count() - before <= 2 + 2 + 2 * per_export + nodes
    assert len(system.list(status="queued", limit=500)[0]) >= 498
    writer.gate.set()


def test_close_leaves_no_thread_behind(tmp_path):
    from silverexport import ExportSystem

    before = {t.ident for t in threading.enumerate()}
    with ExportSystem.open(tmp_path / "d", max_concurrent_exports=2) as system:
        system.store.ingest("token_transfers", transfer_rows(10))
        system.wait(system.submit(ExportRequest(dataset="token_transfers", format="csv")).job_id)
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leftover == []
