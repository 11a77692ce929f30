"""Webhooks with the event log on PostgreSQL, always (whatever EVENT_LOG_BACKEND says):
registrations and deliveries are events of the shared database, never of a stray SQLite file,
so a webhook registered through one system is delivered by another on another data dir."""

from __future__ import annotations

import orjson
import pytest

from silverexport.events.postgres_log import PostgresEventLog
from silverexport.webhooks import verify as verify_signature

from ..http.conftest import create, wait_done
from .conftest import ALICE, transfer_rows, wait_events

CSV = {"dataset": "token_transfers", "format": "csv"}


@pytest.fixture
def on_postgres(monkeypatch, postgres_url) -> str:
    """Every system opened in the test keeps its log in one fresh PostgreSQL database."""
    monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", postgres_url)
    monkeypatch.setenv("SILVEREXPORT_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    return postgres_url


def postgres_events(url: str) -> list:
    log = PostgresEventLog(url, create=False)
    try:
        return list(log.read())
    finally:
        log.close()


async def test_a_webhook_registered_through_one_system_is_delivered_by_another_from_postgres(
    on_postgres, open_system, serve, receiver, tmp_path
):
    # The system that registers and runs the job never delivers; the other one does.
    api = open_system(data_dir=tmp_path / "api", deliver_webhooks=False, webhook_retry_seconds=0.05)
    api.store.ingest("token_transfers", transfer_rows(5))
    client = await serve(api)
    hook_receiver = await receiver()
    resp = await client.post("/v1/webhooks", json={"url": hook_receiver.url}, headers=ALICE)
    assert resp.status == 201, await resp.text()
    hook = await resp.json()
    job = await create(client, CSV)
    await wait_done(api, job["job_id"])

    worker = open_system(data_dir=tmp_path / "worker", webhook_retry_seconds=0.05)
    worker.store.ingest("token_transfers", transfer_rows(5))  # were it to run a job, too
    (got,) = await hook_receiver.wait_for(1)
    assert verify_signature(hook["secret"], got.headers["Silverexport-Signature"], got.body)
    body = orjson.loads(got.body)
    assert body["type"] == "job.completed"
    assert body["job"]["job_id"] == job["job_id"] and body["job"]["status"] == "completed"

    # Every event is in the PostgreSQL log, read on a connection of our own.
    delivered = await wait_events(tmp_path / "worker", "DeliverySucceeded")
    assert [(e.type, e.stream_id) for e in delivered] == [
        ("DeliveryScheduled", body["id"]),
        ("DeliveryAttempted", body["id"]),
        ("DeliverySucceeded", body["id"]),
    ]
    events = postgres_events(on_postgres)
    assert [e.stream_id for e in events if e.type == "WebhookRegistered"] == [hook["webhook_id"]]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    job_events = [e for e in events if e.stream_id == job["job_id"]]
    assert job_events[-1].type == "JobCompleted"
    assert job_events[-1].seq < delivered[0].seq  # scheduled after the job finished
    # ...and none in a SQLite file beside either system.
    assert not (tmp_path / "api" / "events.db").exists()
    assert not (tmp_path / "worker" / "events.db").exists()

    # Both systems list the webhook: they read one log.
    worker_client = await serve(worker)
    for c in (client, worker_client):
        resp = await c.get("/v1/webhooks", headers=ALICE)
        assert resp.status == 200
        listed = await resp.json()
        assert [h["webhook_id"] for h in listed["webhooks"]] == [hook["webhook_id"]]
