"""Deliveries to a real receiver: signed, retried with growing gaps, one id, one maker."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading

import orjson

from silverexport import ExportRequest
from silverexport.events.audit import rebuild, verify
from silverexport.events.backends import open_views
from silverexport.timeutil import parse_canonical
from silverexport.webhooks import verify as verify_signature

from ..http.conftest import Gate, create, wait_done
from .conftest import ALICE, BOB, log_events, open_log, transfer_rows, wait_events

CSV = {"dataset": "token_transfers", "format": "csv"}


def webhook_system(open_system, **kwargs):
    kwargs.setdefault("webhook_allow_hosts", "127.0.0.1")
    kwargs.setdefault("webhook_retry_seconds", 0.05)
    system = open_system(**kwargs)
    system.store.ingest("token_transfers", transfer_rows(10))
    return system


def receiver_check(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does, by hand: parse, recompute, compare in constant time."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(parts["v1"], expected)


async def register(client, url: str, headers=ALICE, **body) -> dict:
    resp = await client.post("/v1/webhooks", json={"url": url, **body}, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_a_finished_job_is_delivered_signed_to_its_tenants_webhook(
    open_system, serve, receiver, tmp_path
):
    system = webhook_system(open_system)
    client = await serve(system)
    alice_hook, bob_hook = await receiver(), await receiver()
    hook = await register(client, alice_hook.url)
    await register(client, bob_hook.url, headers=BOB)
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])

    (got,) = await alice_hook.wait_for(1)
    assert got.headers["Content-Type"] == "application/json"
    assert receiver_check(hook["secret"], got.headers["Silverexport-Signature"], got.body)
    assert verify_signature(hook["secret"], got.headers["Silverexport-Signature"], got.body)
    assert not receiver_check("whsec_wrong", got.headers["Silverexport-Signature"], got.body)
    assert not verify_signature(hook["secret"], got.headers["Silverexport-Signature"], b"{}")
    body = orjson.loads(got.body)
    assert set(body) == {"id", "type", "created_at", "job"}
    assert body["id"] == got.headers["Silverexport-Delivery"]
    assert body["type"] == "job.completed"
    resp = await client.get(f"/v1/export/jobs/{job['job_id']}", headers=ALICE)
    current = await resp.json()
    assert body["job"] == current and body["job"]["status"] == "completed"
    assert body["created_at"] == current["finished_at"]

    events = await wait_events(tmp_path / "data", "DeliverySucceeded")
    assert [e.type for e in events] == [
        "DeliveryScheduled",
        "DeliveryAttempted",
        "DeliverySucceeded",
    ]
    assert {e.stream_id for e in events} == {body["id"]}
    assert orjson.loads(events[0].event.body) == body  # the log holds the exact body
    # Bob's webhook hears nothing of Alice's job.
    assert bob_hook.received == []

    # The log with webhook events in it still verifies and rebuilds.
    log = open_log(tmp_path / "data")
    try:
        views = open_views(log, create=False)
        report = verify(log, views)
        assert report.ok, report.problems
        rebuild(log, views)
        assert verify(log, views).ok
    finally:
        log.close()


async def test_a_failing_receiver_is_retried_with_doubling_gaps_and_one_delivery_id(
    open_system, serve, receiver, tmp_path
):
    system = webhook_system(open_system, webhook_retry_seconds=0.1)
    client = await serve(system)
    flaky = await receiver(script=[500, 500], then=200)
    await register(client, flaky.url, events=["job.completed"])
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])

    received = await flaky.wait_for(3)
    ids = {r.headers["Silverexport-Delivery"] for r in received}
    assert len(ids) == 1 and len({r.body for r in received}) == 1
    events = await wait_events(tmp_path / "data", "DeliverySucceeded")
    types = [e.type for e in events]
    assert types == [
        "DeliveryScheduled",
        *["DeliveryAttempted", "DeliveryFailed"] * 2,
        "DeliveryAttempted",
        "DeliverySucceeded",
    ]
    failed = [e.event for e in events if e.type == "DeliveryFailed"]
    assert [f.delay_seconds for f in failed] == [0.1, 0.2]
    assert [f.status for f in failed] == [500, 500]
    assert [e.event.attempt for e in events if e.type == "DeliveryAttempted"] == [1, 2, 3]
    # Each retry was made no earlier than the time its failure named.
    attempts = [e for e in events if e.type == "DeliveryAttempted"]
    for failure, retry in zip(failed, attempts[1:], strict=True):
        assert retry.recorded_at >= failure.next_attempt_at
    gaps = [
        (parse_canonical(f.next_attempt_at) - parse_canonical(e.recorded_at)).total_seconds()
        for f, e in zip(failed, [e for e in events if e.type == "DeliveryFailed"], strict=True)
    ]
    assert gaps[1] > gaps[0]


async def test_after_the_last_attempt_it_gives_up(open_system, serve, receiver, tmp_path):
    system = webhook_system(open_system, webhook_max_attempts=2)
    client = await serve(system)
    down = await receiver(then=503)
    await register(client, down.url)
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])
    events = await wait_events(tmp_path / "data", "DeliveryGaveUp")
    assert [e.type for e in events][-1] == "DeliveryGaveUp"
    assert events[-1].event.attempt == 2 and events[-1].event.status == 503
    assert len(await down.wait_for(2)) == 2


async def test_a_hanging_receiver_times_out_and_blocks_no_export(
    open_system, serve, receiver, tmp_path
):
    system = webhook_system(
        open_system, webhook_timeout_seconds=0.5, webhook_max_attempts=1, webhook_max_concurrent=1
    )
    client = await serve(system)
    stuck = await receiver(hang=True)
    await register(client, stuck.url)
    first = await create(client, CSV)
    await wait_done(system, first["job_id"])
    await stuck.wait_for(1)  # the delivery now hangs in the receiver
    # Exports go on while it hangs: the dispatcher is not in their way.
    more = [await create(client, {**CSV, "limit": n}) for n in (1, 2, 3)]
    for job in more:
        assert (await wait_done(system, job["job_id"])).rows > 0
    events = await wait_events(tmp_path / "data", "DeliveryGaveUp")
    gave_up = [e.event for e in events if e.type == "DeliveryGaveUp"]
    assert any("no answer within 0.5 s" in g.error for g in gave_up)


async def test_two_systems_on_one_log_deliver_each_notification_once(
    open_system, serve, receiver, tmp_path
):
    one = webhook_system(open_system)
    two = open_system(webhook_allow_hosts="127.0.0.1", webhook_retry_seconds=0.05)
    client = await serve(one)
    r = await receiver()
    await register(client, r.url, events=["job.completed"])
    jobs = [
        one.submit(ExportRequest(dataset="token_transfers", format="csv", limit=n + 1), tenant=t)
        for n, t in enumerate(["alice"] * 6)
    ]
    for job in jobs:
        await asyncio.to_thread(two.wait, job.job_id, 30)
    await wait_events(tmp_path / "data", "DeliverySucceeded", count=len(jobs))
    received = await r.wait_for(len(jobs))
    ids = [x.headers["Silverexport-Delivery"] for x in received]
    assert len(ids) == len(set(ids)) == len(jobs)
    events = log_events(tmp_path / "data")
    assert sum(e.type == "DeliveryScheduled" for e in events) == len(jobs)
    assert sum(e.type == "DeliveryAttempted" for e in events) == len(jobs)


async def test_a_deleted_webhook_gets_nothing_more(open_system, serve, receiver, tmp_path):
    system = webhook_system(open_system)
    client = await serve(system)
    r = await receiver()
    hook = await register(client, r.url)
    resp = await client.delete(f"/v1/webhooks/{hook['webhook_id']}", headers=ALICE)
    assert resp.status == 204
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])
    # A second webhook registered after the job finished is not told of it either.
    later = await receiver()
    await register(client, later.url)
    witness = await create(client, {**CSV, "limit": 1})
    await wait_done(system, witness["job_id"])
    (got,) = await later.wait_for(1)
    assert orjson.loads(got.body)["job"]["job_id"] == witness["job_id"]
    assert r.received == []


async def test_concurrent_deliveries_are_capped_and_add_no_threads(
    open_system, serve, receiver, tmp_path
):
    system = webhook_system(open_system, webhook_max_concurrent=2, webhook_timeout_seconds=60)
    client = await serve(system)
    stuck = await receiver(hang=True)
    await register(client, stuck.url)
    first = await create(client, CSV)
    await wait_done(system, first["job_id"])
    await stuck.wait_for(1)
    jobs = [await create(client, {**CSV, "limit": n}) for n in range(1, 8)]
    for job in jobs:
        await wait_done(system, job["job_id"])
    await wait_events(tmp_path / "data", "DeliveryScheduled", count=len(jobs) + 1)
    await stuck.wait_for(2)
    # Eight deliveries are owed; two are in flight, hanging; the others wait for a slot.
    events = log_events(tmp_path / "data")
    assert sum(e.type == "DeliveryScheduled" for e in events) == len(jobs) + 1
    assert sum(e.type == "DeliveryAttempted" for e in events) == 2
    assert len(stuck.received) == 2
    # The dispatcher's loop thread and its database thread; none per delivery.
    names = sorted(t.name for t in threading.enumerate() if t.name.startswith("silverexport-web"))
    assert names == ["silverexport-webhooks", "silverexport-webhooks-db_0"], names


async def test_each_webhook_hears_only_the_events_it_asked_for(
    open_system, serve, receiver, tmp_path
):
    gate = Gate()
    system = webhook_system(open_system, export_fn=gate, job_ttl_seconds=0)
    client = await serve(system)
    cancels, expiries = await receiver(), await receiver()
    await register(client, cancels.url, events=["job.cancelled"])
    await register(client, expiries.url, events=["job.expired"])
    held = await create(client, CSV)
    assert await asyncio.to_thread(gate.entered.wait, 30)
    resp = await client.delete(f"/v1/export/jobs/{held['job_id']}", headers=ALICE)
    assert resp.status == 200
    gate.opened.set()
    done = await create(client, {**CSV, "limit": 1})
    await wait_done(system, done["job_id"])

    (cancelled,) = await cancels.wait_for(1)
    body = orjson.loads(cancelled.body)
    assert body["type"] == "job.cancelled" and body["job"]["job_id"] == held["job_id"]
    assert body["job"]["status"] == "cancelled"
    expired = [orjson.loads(x.body) for x in await expiries.wait_for(2)]
    assert {b["job"]["job_id"] for b in expired} == {held["job_id"], done["job_id"]}
    assert {b["type"] for b in expired} == {"job.expired"}
    assert {b["job"]["status"] for b in expired} == {"expired"}
    assert len(cancels.received) == 1
