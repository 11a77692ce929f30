"""At least once across a SIGKILL: a real `serve` is killed while its receiver is down, and
the next process delivers what was owed, with the same id, from the log alone."""

from __future__ import annotations

import asyncio

import orjson

from silverexport.webhooks import verify

from ..reliability.serve_process import Client, ServeProcess, child_env, cli
from .conftest import Receiver, wait_events


async def test_a_delivery_owed_when_serve_is_killed_is_made_after_the_restart(receiver, tmp_path):
    data_dir = tmp_path / "data"
    env = child_env(
        SILVEREXPORT_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
        SILVEREXPORT_WEBHOOK_RETRY_SECONDS="0.2",
        SILVEREXPORT_CATCH_UP_INTERVAL_SECONDS="0.1",
    )
    r = await receiver()
    port = r.port
    first = ServeProcess(data_dir, tmp_path / "one.log", "--demo", env=env)
    second = None
    try:
        base = await asyncio.to_thread(first.wait_for_url)
        client = Client(base)
        status, hook = await asyncio.to_thread(client.json, "POST", "/v1/webhooks", {"url": r.url})
        assert status == 201, hook
        await r.stop()  # the receiver is down from here until after the kill
        status, job = await asyncio.to_thread(
            client.json, "POST", "/v1/export/dataset", {"dataset": "hl_fills", "format": "jsonl"}
        )
        assert status == 202, job
        await wait_events(data_dir, "DeliveryFailed")  # an attempt met a closed port
        client.close()
        first.kill()

        back = await Receiver().start(port)
        try:
            second = ServeProcess(data_dir, tmp_path / "two.log", env=env)
            await asyncio.to_thread(second.wait_for_url)
            (got,) = await back.wait_for(1)
            events = await wait_events(data_dir, "DeliverySucceeded")
        finally:
            await back.stop()
        assert second.stop() == 0
    finally:
        first.close()
        if second is not None:
            second.close()

    body = orjson.loads(got.body)
    assert body["type"] == "job.completed" and body["job"]["job_id"] == job["job_id"]
    assert verify(hook["secret"], got.headers["Silverexport-Signature"], got.body)
    assert {e.stream_id for e in events} == {body["id"]} == {got.headers["Silverexport-Delivery"]}
    assert sum(e.type == "DeliveryScheduled" for e in events) == 1
    assert events[-1].type == "DeliverySucceeded" and events[-1].event.attempt >= 2
    owners = {e.event.owner for e in events if e.type == "DeliveryAttempted"}
    assert len(owners) == 2  # attempts by the killed process, then by the new one
    result = await asyncio.to_thread(cli, "verify", "--data-dir", str(data_dir), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    audit = await asyncio.to_thread(cli, "audit", body["id"], "--data-dir", str(data_dir), env=env)
    assert f"delivery {body['id']}" in audit.stdout and "DeliverySucceeded" in audit.stdout
    registration = await asyncio.to_thread(
        cli, "audit", hook["webhook_id"], "--data-dir", str(data_dir), env=env
    )
    assert "WebhookRegistered" in registration.stdout
    assert hook["secret"] not in registration.stdout  # audit masks it
