"""The read paths of a served system with its log on PostgreSQL, always: /metrics' job
counts, the SSE stream and the webhook list. A dropped database connection is a StorageError
(503, never a 500), and the next read connects anew instead of failing for ever."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from .conftest import ALICE, create, wait_done
from .sse import SSEReader

CSV = {"dataset": "token_transfers", "format": "csv"}
WAIT = 30.0


@pytest.fixture
def on_postgres(monkeypatch, postgres_url) -> str:
    monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", postgres_url)
    return postgres_url


def drop_connections(url: str) -> int:
    """What a database restart does to every client: their connections are gone."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


async def until_ok(client, path: str) -> list[int]:
    """GET `path` until it answers 200; the statuses seen on the way."""
    statuses: list[int] = []
    deadline = time.monotonic() + WAIT
    while not statuses or statuses[-1] != 200:
        assert time.monotonic() < deadline, f"{path}: still {statuses[-5:]} after {WAIT} s"
        resp = await client.get(path, headers=ALICE)
        statuses.append(resp.status)
        if resp.status != 200:
            assert resp.status == 503, await resp.text()
            assert (await resp.json())["error"]
            await asyncio.sleep(0.02)
    return statuses


async def test_metrics_stream_and_webhooks_read_postgres_and_survive_a_dropped_connection(
    on_postgres, open_system, serve
):
    system = open_system(stream_poll_seconds=0.02)
    system.store.ingest("token_transfers", [])
    client = await serve(system)
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])

    resp = await client.get("/metrics")
    assert resp.status == 200
    assert 'silverexport_jobs{status="completed"} 1.0' in await resp.text()
    assert system.job_counts() == {"completed": 1}

    assert drop_connections(on_postgres) >= 1
    # This thread's reader was dropped with the rest: the read finds it dead and asks again on
    # a new one, so the first read after a database restart answers instead of a 503.
    assert system.job_counts() == {"completed": 1}

    # Served: a 503 while a reader finds its connection gone, and then the answers again.
    assert set(await until_ok(client, "/metrics")) <= {200, 503}
    assert set(await until_ok(client, "/v1/webhooks")) <= {200, 503}
    resp = await client.get(f"/v1/export/jobs/{job['job_id']}/stream", headers=ALICE)
    assert resp.status == 200
    events = await SSEReader(resp).events()
    resp = await client.get(f"/v1/export/jobs/{job['job_id']}/events", headers=ALICE)
    documents = (await resp.json())["events"]
    assert [m.data for m in events] == documents  # the whole history, from PostgreSQL
    assert [m.event for m in events] == ["JobRequested", "JobStarted", "JobCompleted"]
