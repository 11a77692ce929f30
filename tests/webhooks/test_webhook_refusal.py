"""A target allowed when registered is checked again when delivering: nothing is sent to it
once its name resolves to a private address, or once the allow-list no longer admits it."""

from __future__ import annotations

from ..http.conftest import create, wait_done
from .conftest import transfer_rows, wait_events
from .resolver import TableResolver
from .test_webhook_delivery import CSV, register

PUBLIC = "93.184.215.14"  # what the name resolves to at registration; never contacted


async def test_a_name_that_now_resolves_to_loopback_is_refused_with_no_traffic(
    open_system, serve, receiver, tmp_path
):
    r = await receiver()
    resolver = TableResolver({"hooks.example.com": [PUBLIC]})
    system = open_system(
        webhook_resolver=resolver, webhook_retry_seconds=0.05, webhook_max_attempts=2
    )
    system.store.ingest("token_transfers", transfer_rows(5))
    client = await serve(system)
    await register(client, f"http://hooks.example.com:{r.port}/hook")
    resolver.table["hooks.example.com"] = ["127.0.0.1"]  # DNS changed; before any job ends
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])

    events = await wait_events(tmp_path / "data", "DeliveryGaveUp")
    outcomes = [e.event for e in events if e.type in ("DeliveryFailed", "DeliveryGaveUp")]
    assert len(outcomes) == 2 and all(o.refused for o in outcomes)
    assert "resolves to 127.0.0.1, a loopback address" in outcomes[0].error
    assert resolver.asked.count("hooks.example.com") == 3  # registration, then each attempt
    assert r.received == []


async def test_an_address_the_allow_list_no_longer_admits_is_refused_with_no_traffic(
    open_system, serve, receiver, tmp_path
):
    r = await receiver()
    first = open_system(webhook_allow_hosts="127.0.0.0/8")
    await register(await serve(first), r.url)
    first.close()

    system = open_system(webhook_retry_seconds=0.05, webhook_max_attempts=2)
    system.store.ingest("token_transfers", transfer_rows(5))
    client = await serve(system)
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])
    events = await wait_events(tmp_path / "data", "DeliveryGaveUp")
    outcomes = [e.event for e in events if e.type in ("DeliveryFailed", "DeliveryGaveUp")]
    assert [o.refused for o in outcomes] == [True, True]
    assert "127.0.0.1 is a loopback address" in outcomes[-1].error
    assert r.received == []
