"""Open streams add no threads (SPEC §9): 300 of them on real servers, counted."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import aiohttp
import psutil

from silverexport.http.bridge import BLOCKING_THREADS, EXECUTORS
from silverexport.http.stream import HUB
from tests.reliability.serve_process import DEADLINE, ROOT, ServeProcess, child_env

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
    print(f"threads in the process: {before} before, {during} with {STREAMS} streams open")
    # A thread per stream would add 300; the server added none.
    assert during == before, (before, during)
    hub = client.app[HUB]
    deadline = asyncio.get_running_loop().time() + 30
    while hub.open_streams:  # each handler unsubscribes once its stream has ended
        assert asyncio.get_running_loop().time() < deadline, hub.open_streams
        await asyncio.sleep(0.01)


async def open_streams(session, url: str, count: int) -> list[SSEReader]:
    """`count` streams of one held job, each read up to the end of its history."""
    responses = await asyncio.gather(*(session.get(url, headers=ALICE) for _ in range(count)))
    readers = [SSEReader(resp) for resp in responses]
    for reader in readers:
        assert [(await reader.next_event()).event for _ in range(2)] == [
            "JobRequested",
            "JobStarted",
        ]
    return readers


async def test_a_serve_process_keeps_its_threads_with_hundreds_of_streams(tmp_path):
    """The same against `silverexport serve` in its own process, its threads read by psutil;
    the job runs in a third process on the same data dir, so the server only streams."""
    data_dir = tmp_path / "data"
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.http.held_job_worker",
        str(data_dir),
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    server = None
    try:
        job_id = (await asyncio.wait_for(worker.stdout.readline(), DEADLINE)).decode().strip()
        server = ServeProcess(data_dir, tmp_path / "serve.log", env=child_env())
        url = f"{await asyncio.to_thread(server.wait_for_url)}/v1/export/jobs/{job_id}/stream"
        threads = psutil.Process(server.pid).num_threads
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            # Warm up: the server's bounded pool starts its threads as requests need them.
            for reader in await open_streams(session, url, 2 * BLOCKING_THREADS):
                reader.response.close()
            before = threads()
            readers = await open_streams(session, url, STREAMS)
            during = threads()
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
            endings = await asyncio.gather(*(reader.events() for reader in readers))
        assert {events[-1].event for events in endings} == {"JobCompleted"}
        # A thread per stream would add 300. At most, the pool grew to its fixed bound.
        print(f"serve process threads: {before} before, {during} with {STREAMS} streams open")
        assert during - before <= BLOCKING_THREADS, (before, during)
        out, _ = await asyncio.wait_for(worker.communicate(), DEADLINE)
        assert out.decode().strip() == "completed"
    finally:
        if server is not None:
            server.close()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
