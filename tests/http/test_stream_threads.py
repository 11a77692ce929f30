"""Open streams add no threads (SPEC §9): 300 of them on a real server, counted."""

from __future__ import annotations

import asyncio
import threading

import aiohttp

from silverexport.http.bridge import BLOCKING_THREADS, EXECUTORS
from silverexport.http.stream import HUB

from .conftest import ALICE, Gate, create, wait_done
from .sse import SSEReader

STREAMS = 300


def fill_the_pool(app) -> None:
    """Make the app's bounded pool start every thread it may ever have, so that what it
    starts lazily is not mistaken for a thread per stream."""
    barrier = threading.Barrier(BLOCKING_THREADS + 1)
    pool = app[EXECUTORS].blocking
    futures = [pool.submit(barrier.wait, 30) for _ in range(BLOCKING_THREADS)]
    barrier.wait(30)
    for future in futures:
        future.result(30)


async def test_hundreds_of_open_streams_leave_the_thread_count_flat(open_system, serve):
    gate = Gate()
    system = open_system(export_fn=gate, max_concurrent_exports=1, stream_keepalive_seconds=1)
    system.store.ingest("token_transfers", [])
    client = await serve(system)  # a real aiohttp server on a loopback port
    job = await create(client, {"dataset": "token_transfers", "format": "csv"})
    await asyncio.to_thread(gate.entered.wait, 30)
    await asyncio.to_thread(fill_the_pool, client.app)
    url = str(client.make_url(f"/v1/export/jobs/{job['job_id']}/stream"))
    before = threading.active_count()

    connector = aiohttp.TCPConnector(limit=0)  # one connection per stream
    async with aiohttp.ClientSession(connector=connector) as session:
        responses = await asyncio.gather(*(session.get(url, headers=ALICE) for _ in range(STREAMS)))
        readers = [SSEReader(resp) for resp in responses]
        for reader in readers:  # every stream is open and has sent its history
            assert (await reader.next_event()).event == "JobRequested"
            assert (await reader.next_event()).event == "JobStarted"
        during = threading.active_count()

        gate.opened.set()
        endings = await asyncio.gather(*(reader.events() for reader in readers))
    assert {tuple(m.event for m in events)[-1:] for events in endings} == {("JobCompleted",)}
    assert (await wait_done(system, job["job_id"])).status.value == "completed"
    # A thread per stream would add 300; the server added none.
    assert during == before, (before, during)
    hub = client.app[HUB]
    deadline = asyncio.get_running_loop().time() + 30
    while hub.open_streams:  # each handler unsubscribes once its stream has ended
        assert asyncio.get_running_loop().time() < deadline, hub.open_streams
        await asyncio.sleep(0.01)
