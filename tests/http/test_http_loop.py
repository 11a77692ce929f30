"""The event loop never blocks on the actor system, and threads stay bounded."""

from __future__ import annotations

import asyncio
import threading

from silverexport.http.bridge import BLOCKING_THREADS, STREAMING_THREADS

from .conftest import ALICE, WAIT, Gate, create, wait_done

CSV = {"dataset": "token_transfers", "format": "csv"}


async def test_a_slow_system_call_does_not_stall_other_requests(client, system, monkeypatch):
    done = await create(client, CSV)
    await wait_done(system, done["job_id"])

    entered, release = threading.Event(), threading.Event()
    submit = system.submit_request

    def slow_submit(*args, **kwargs):
        """A supervisor that takes its time: were it called on the loop, the loop would stop."""
        entered.set()
        release.wait(WAIT)
        return submit(*args, **kwargs)

    monkeypatch.setattr(system, "submit_request", slow_submit)
    pending = asyncio.ensure_future(client.post("/v1/export/dataset", json=CSV, headers=ALICE))
    try:
        assert await asyncio.to_thread(entered.wait, WAIT)
        # Only a guard against a hang: answering at all while submit is held is the test.
        async with asyncio.timeout(WAIT):
            assert (await client.get("/healthz")).status == 200
            resp = await client.get(f"/v1/export/jobs/{done['job_id']}", headers=ALICE)
            assert resp.status == 200
        assert not pending.done()
    finally:
        release.set()
    assert (await pending).status == 202


async def test_threads_do_not_grow_with_queued_jobs(open_system, serve):
    gate = Gate()
    system = open_system(export_fn=gate, max_concurrent_exports=2)
    client = await serve(system)
    await create(client, CSV)
    before = threading.active_count()
    jobs = await asyncio.gather(*(create(client, CSV) for _ in range(60)))
    await asyncio.gather(
        *(client.get(f"/v1/export/jobs/{j['job_id']}", headers=ALICE) for j in jobs)
    )
    after = threading.active_count()
    # At most: one more export actor, the HTTP pools filling up, aiohttp's file executor.
    assert after - before <= 1 + BLOCKING_THREADS + STREAMING_THREADS, (before, after)
    statuses = {
        j["status"]
        for j in (await (await client.get("/v1/export/jobs?limit=100", headers=ALICE)).json())[
            "jobs"
        ]
    }
    assert "queued" in statuses
    gate.opened.set()
