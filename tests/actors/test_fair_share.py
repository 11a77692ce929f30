"""Fair share between tenants, queue_position and the per-tenant queue cap (SPEC §5), through
a running system. The queue's own order is in test_job_queue_contract.py."""

from __future__ import annotations

import logging

import pytest

from silverexport import ExportRequest, JobStatus
from silverexport.errors import QueueFullError
from silverexport.http import make_app

from .conftest import WAIT, GatedWriter, transfer_rows, wait_until

CSV = ExportRequest(dataset="token_transfers", format="csv")


def _started_order(system) -> list[str]:
    return [r.stream_id for r in system.log.read() if r.event.type == "JobStarted"]


def test_one_tenant_s_backlog_does_not_hold_back_another_s_job(open_system):
    writer = GatedWriter()
    system = open_system(max_concurrent_exports=1, export_fn=writer)
    system.store.ingest("token_transfers", transfer_rows(5))
    first = system.submit(CSV, tenant="big")
    wait_until(writer.started.is_set, what="the first job to hold the only slot")
    backlog = [system.submit(CSV, tenant="big") for _ in range(6)]
    small = system.submit(CSV, tenant="small")
    assert [j.queue_position for j in backlog] == [1, 2, 3, 4, 5, 6]
    assert small.queue_position == 2  # right after the head of the backlog, not behind it
    assert system.status(backlog[1].job_id).queue_position == 3
    assert system.status(first.job_id).queue_position is None  # running
    listed = {v.job_id: v.queue_position for v in system.list(tenant="big")[0]}
    assert listed[backlog[5].job_id] == 7
    writer.gate.set()
    jobs = [first, *backlog, small]
    for job in jobs:
        done = system.wait(job.job_id, timeout=WAIT)
        assert done.status is JobStatus.COMPLETED and done.queue_position is None
    order = _started_order(system)
    assert order[:3] == [first.job_id, backlog[0].job_id, small.job_id]
    assert order[3:] == [j.job_id for j in backlog[1:]]


def test_one_job_more_than_the_cap_is_refused_and_recorded_nowhere(open_system):
    writer = GatedWriter()
    system = open_system(max_concurrent_exports=1, export_fn=writer, max_queued_per_tenant=2)
    system.store.ingest("token_transfers", transfer_rows(5))
    system.submit(CSV, tenant="alice")
    wait_until(writer.started.is_set, what="the first job to hold the only slot")
    queued = [system.submit(CSV, tenant="alice", idempotency_key=f"k{i}") for i in range(2)]
    count = system.log.count()
    with pytest.raises(QueueFullError, match="2 jobs queued"):
        system.submit(CSV, tenant="alice")
    assert system.log.count() == count
    again = system.submit_request(CSV, tenant="alice", idempotency_key="k0")
    assert again.job == queued[0] and not again.created  # a replay is not a new job
    assert system.submit(CSV, tenant="bob").status is JobStatus.QUEUED  # per tenant
    system.cancel(queued[0].job_id, tenant="alice")
    assert system.submit(CSV, tenant="alice").status is JobStatus.QUEUED  # room again
    writer.gate.set()


async def test_http_answers_429_with_retry_after_and_the_document_has_queue_position(
    open_system, aiohttp_client
):
    writer = GatedWriter()
    system = open_system(
        max_concurrent_exports=1, export_fn=writer, max_queued_per_tenant=1, api_keys="alice:k1"
    )
    system.store.ingest("token_transfers", transfer_rows(5))
    client = await aiohttp_client(make_app(system))
    headers = {"Authorization": "Bearer k1"}
    body = {"dataset": "token_transfers", "format": "csv"}
    documents = []
    for _ in range(2):
        resp = await client.post("/v1/export/dataset", json=body, headers=headers)
        assert resp.status == 202
        documents.append(await resp.json())
    keys = list(documents[1])
    assert keys[keys.index("status") + 1] == "queue_position"
    assert documents[0]["queue_position"] is None  # started at once
    assert documents[1]["status"] == "queued" and documents[1]["queue_position"] == 1
    count = system.log.count()
    resp = await client.post("/v1/export/dataset", json=body, headers=headers)
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "too_many_queued"
    assert system.log.count() == count
    got = await client.get(f"/v1/export/jobs/{documents[1]['job_id']}", headers=headers)
    assert (await got.json())["queue_position"] == 1
    writer.gate.set()


def test_each_state_change_is_one_line_of_the_jobs_logger(open_system, caplog):
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(5))
    with caplog.at_level(logging.INFO, logger="silverexport.jobs"):
        job = system.submit(CSV)
        system.wait(job.job_id, timeout=WAIT)
    lines = [r for r in caplog.records if r.name == "silverexport.jobs"]
    assert [getattr(r, "job_id", None) for r in lines] == [job.job_id] * 3
    assert [r.event for r in lines] == ["JobRequested", "JobStarted", "JobCompleted"]
