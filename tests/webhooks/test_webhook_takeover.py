"""An attempt claimed by a process that is gone is failed as interrupted and made by another."""

from __future__ import annotations

from silverexport.webhooks.ledger import DeliveryLedger
from silverexport.webhooks.store import WebhookLog

from ..http.conftest import create, wait_done
from .conftest import transfer_rows, wait_events
from .test_webhook_delivery import CSV, register


async def test_a_claim_whose_process_died_is_taken_over(open_system, serve, receiver, tmp_path):
    r = await receiver()
    quiet = open_system(webhook_allow_hosts="127.0.0.1", deliver_webhooks=False)
    quiet.store.ingest("token_transfers", transfer_rows(5))
    client = await serve(quiet)
    await register(client, r.url)
    job = await create(client, CSV)
    await wait_done(quiet, job["job_id"])

    # A process that scheduled and claimed the delivery, then died before sending it: the
    # real ledger, under an owner id that holds no lock (as after a SIGKILL).
    store = WebhookLog(quiet.settings)
    try:
        ghost = DeliveryLedger(
            quiet.settings, store, owner_id="ghost", is_alive=lambda _: False, on_outcome=print
        )
        ghost.load()
        claims, _ = ghost.step(free=1)
        assert len(claims) == 1
    finally:
        store.close()
    quiet.close()

    system = open_system(webhook_allow_hosts="127.0.0.1", webhook_retry_seconds=0.05)
    (got,) = await r.wait_for(1)
    events = await wait_events(tmp_path / "data", "DeliverySucceeded")
    assert [(e.type, getattr(e.event, "attempt", None)) for e in events] == [
        ("DeliveryScheduled", None),
        ("DeliveryAttempted", 1),
        ("DeliveryFailed", 1),
        ("DeliveryAttempted", 2),
        ("DeliverySucceeded", 2),
    ]
    assert events[1].event.owner == "ghost"
    assert events[3].event.owner == system.owner.owner_id
    assert "interrupted" in events[2].event.error and events[2].event.delay_seconds == 0
    assert got.headers["Silverexport-Delivery"] == claims[0].delivery.delivery_id


async def test_closing_hands_an_attempt_in_flight_back_at_once(
    open_system, serve, receiver, tmp_path
):
    r = await receiver(hang=True)
    first = open_system(webhook_allow_hosts="127.0.0.1", webhook_timeout_seconds=60)
    first.store.ingest("token_transfers", transfer_rows(5))
    client = await serve(first)
    await register(client, r.url)
    job = await create(client, CSV)
    await wait_done(first, job["job_id"])
    await r.wait_for(1)  # attempt 1 hangs in the receiver
    r.hang = False
    await client.close()
    first.close()  # cancels it, and records it as interrupted, due now

    second = open_system(webhook_allow_hosts="127.0.0.1")
    events = await wait_events(tmp_path / "data", "DeliverySucceeded")
    failed = next(e.event for e in events if e.type == "DeliveryFailed")
    assert "interrupted" in failed.error and failed.delay_seconds == 0
    owners = [e.event.owner for e in events if e.type == "DeliveryAttempted"]
    assert owners == [first.owner.owner_id, second.owner.owner_id]
    assert len(await r.wait_for(2)) == 2
