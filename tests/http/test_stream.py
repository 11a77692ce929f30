"""GET /v1/export/jobs/{job_id}/stream (SPEC §9): history, then live events, then the end."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from silverexport.http.stream import HUB
from tests.reliability.serve_process import ROOT

from .conftest import ALICE, BOB, Gate, create, error_of, wait_done
from .sse import SSEReader

CSV = {"dataset": "token_transfers", "format": "csv"}


def stream_url(job_id: str) -> str:
    return f"/v1/export/jobs/{job_id}/stream"


async def history(client, job_id: str) -> list[dict]:
    resp = await client.get(f"/v1/export/jobs/{job_id}/events", headers=ALICE)
    return (await resp.json())["events"]


async def held_job(open_system, serve, **settings):
    """A served system whose one running job waits at a gate (JobStarted is in the log)."""
    gate = Gate()
    system = open_system(export_fn=gate, max_concurrent_exports=1, **settings)
    system.store.ingest("token_transfers", [])
    client = await serve(system)
    job = await create(client, CSV)
    await asyncio.to_thread(gate.entered.wait, 30)
    return gate, system, client, job


async def test_history_then_live_events_then_the_stream_closes(open_system, serve):
    gate, system, client, job = await held_job(open_system, serve)
    resp = await client.get(stream_url(job["job_id"]), headers=ALICE)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    reader = SSEReader(resp)
    first = await reader.next()
    assert first.comment == f"events of job {job['job_id']}"  # sent at once: headers are out
    past = [await reader.next_event(), await reader.next_event()]
    assert [m.event for m in past] == ["JobRequested", "JobStarted"]

    gate.opened.set()  # everything from here on is appended after the stream was open
    live = await reader.events()  # ... until the server closes the stream
    assert live and live[-1].event == "JobCompleted"
    assert await resp.content.read() == b""

    messages = past + live
    documents = await history(client, job["job_id"])
    assert [m.data for m in messages] == documents  # data: the event document as in /events
    assert [m.id for m in messages] == [str(d["seq"]) for d in documents]
    assert [m.event for m in messages] == [d["type"] for d in documents]
    assert (await wait_done(system, job["job_id"])).rows == 0


async def test_a_finished_job_streams_its_whole_history_and_closes(client, system):
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])
    resp = await client.get(stream_url(job["job_id"]), headers=ALICE)
    events = await SSEReader(resp).events()
    assert [m.data for m in events] == await history(client, job["job_id"])
    assert events[-1].event == "JobCompleted"


async def test_resume_after_last_event_id_or_after(client, system):
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])
    documents = await history(client, job["job_id"])
    first_seq = documents[0]["seq"]
    url = stream_url(job["job_id"])

    resp = await client.get(url, headers={**ALICE, "Last-Event-ID": str(first_seq)})
    assert [m.data for m in await SSEReader(resp).events()] == documents[1:]
    resp = await client.get(url, params={"after": str(first_seq)}, headers=ALICE)
    assert [m.data for m in await SSEReader(resp).events()] == documents[1:]
    # A reconnecting browser sends the header and keeps the URL's ?after: the header wins.
    resp = await client.get(
        url, params={"after": "0"}, headers={**ALICE, "Last-Event-ID": str(first_seq)}
    )
    assert [m.data for m in await SSEReader(resp).events()] == documents[1:]
    # After the last event of a finished job there is nothing to wait for: it closes at once.
    last = documents[-1]["seq"]
    resp = await client.get(url, headers={**ALICE, "Last-Event-ID": str(last)})
    assert resp.status == 200 and await SSEReader(resp).events() == []


async def test_resume_of_a_live_job_skips_what_was_seen(open_system, serve):
    gate, _system, client, job = await held_job(open_system, serve)
    seen = await history(client, job["job_id"])
    resp = await client.get(
        stream_url(job["job_id"]), headers={**ALICE, "Last-Event-ID": str(seen[0]["seq"])}
    )
    reader = SSEReader(resp)
    assert (await reader.next_event()).data == seen[1]  # JobStarted, not JobRequested again
    gate.opened.set()
    rest = await reader.events()
    assert [m.data for m in rest] == (await history(client, job["job_id"]))[2:]


async def test_keep_alive_comments_while_nothing_happens(open_system, serve):
    gate, _system, client, job = await held_job(open_system, serve, stream_keepalive_seconds=0.05)
    resp = await client.get(stream_url(job["job_id"]), headers=ALICE)
    reader = SSEReader(resp)
    assert [(await reader.next_event()).event for _ in range(2)] == ["JobRequested", "JobStarted"]
    comments = []
    while len(comments) < 3:  # the job is held: only comments can come
        message = await reader.next()
        assert message is not None and message.event is None, message
        comments.append(message.comment)
    assert comments == ["keep-alive"] * 3
    gate.opened.set()
    assert (await reader.events())[-1].event == "JobCompleted"


async def test_a_cancelled_job_ends_its_stream(open_system, serve):
    _gate, _system, client, job = await held_job(open_system, serve)
    resp = await client.get(stream_url(job["job_id"]), headers=ALICE)
    reader = SSEReader(resp)
    assert (await reader.next_event()).event == "JobRequested"
    assert (await client.delete(f"/v1/export/jobs/{job['job_id']}", headers=ALICE)).status == 200
    rest = await reader.events()
    assert rest[-1].event == "JobCancelled"


async def test_another_tenants_job_and_bad_input(client, system):
    job = await create(client, CSV)
    url = stream_url(job["job_id"])
    await error_of(await client.get(url, headers=BOB), 404)
    await error_of(await client.get(stream_url("0" * 32), headers=ALICE), 404)
    await error_of(await client.get(stream_url("not-a-job"), headers=ALICE), 404)
    await error_of(await client.get(url), 401)
    for headers, params, field in (
        ({"Last-Event-ID": "x1"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "-1"}, {}, "Last-Event-ID"),
        ({}, {"after": "1.5"}, "after"),
        ({}, {"since": "1"}, "since"),
    ):
        error = await error_of(await client.get(url, params=params, headers=ALICE | headers), 400)
        assert field in error["message"]


async def test_a_job_run_by_another_process_streams_too(open_system, serve, tmp_path):
    """Another process (another node) runs the job on the same log; this one only serves."""
    data_dir = tmp_path / "data"
    system = open_system(data_dir=data_dir)
    system.store.ingest("token_transfers", [])
    client = await serve(system)
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.http.held_job_worker",
        str(data_dir),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        job_id = (await asyncio.wait_for(other.stdout.readline(), 60)).decode().strip()
        assert job_id, (await other.stderr.read()).decode()
        resp = await client.get(stream_url(job_id), headers=ALICE)
        reader = SSEReader(resp)
        past = [(await reader.next_event()).event for _ in range(2)]
        other.stdin.write(b"go\n")
        await other.stdin.drain()
        rest = await reader.events()
        out, err = await asyncio.wait_for(other.communicate(), 60)
    finally:
        if other.returncode is None:
            other.kill()
            await other.wait()
    assert other.returncode == 0, err.decode()
    assert out.decode().strip() == "completed"
    assert past == ["JobRequested", "JobStarted"]
    assert rest[-1].event == "JobCompleted"  # appended over there after the stream was open
    assert rest[-1].data == (await history(client, job_id))[-1]


async def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)


async def test_a_client_that_goes_away_is_unsubscribed(open_system, serve):
    gate, _system, client, job = await held_job(open_system, serve)
    hub = client.app[HUB]
    resp = await client.get(stream_url(job["job_id"]), headers=ALICE)
    assert (await SSEReader(resp).next_event()).event == "JobRequested"
    assert hub.open_streams == 1
    resp.close()  # drops the connection
    await wait_until(lambda: hub.open_streams == 0, "the stream of a gone client stayed open")
    gate.opened.set()


async def test_shutting_down_ends_open_streams(open_system, serve):
    gate, _system, client, job = await held_job(open_system, serve)
    resp = await client.get(stream_url(job["job_id"]), headers=ALICE)
    reader = SSEReader(resp)
    assert (await reader.next_event()).event == "JobRequested"
    await client.app[HUB].close()  # what the app's on_shutdown does
    assert [m.event for m in await reader.events()] == ["JobStarted"]
    gate.opened.set()
