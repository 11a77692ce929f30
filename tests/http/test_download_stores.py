"""A job end to end on each kind of export store SILVEREXPORT_STORAGE_URL names: an S3
bucket (a real SeaweedFS) and a directory outside the data dir. Export through HTTP, full
and ranged downloads with today's headers, expiry and cancellation leave no object.

The store is inspected with its own tools (boto3, the file system), not through the port.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from silverexport.silver.writers import export_to_file

from .conftest import ALICE, WAIT, create, error_of, transfer_rows, wait_done

ROWS = 3000


class Store:
    """What the store holds, seen from outside the service."""

    def __init__(self, url: str, names: Callable[[], list[str]], read: Callable[[str], bytes]):
        self.url, self.names, self.read = url, names, read


@pytest.fixture(params=["s3", "file"])
def store(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Store:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        client = server.client()
        prefix = "silver/exports/"
        monkeypatch.setenv("SILVEREXPORT_S3_ENDPOINT_URL", server.endpoint_url)
        url = f"s3://{bucket}/{prefix}"

        def names() -> list[str]:
            listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            return sorted(o["Key"][len(prefix) :] for o in listed) + [
                f"upload:{u['Key']}" for u in uploads
            ]

        def read(name: str) -> bytes:
            return client.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()

    else:
        directory = tmp_path / "shared" / "exports"
        directory.mkdir(parents=True)
        url = directory.as_uri()

        def names() -> list[str]:
            return sorted(os.listdir(directory))

        def read(name: str) -> bytes:
            return (directory / name).read_bytes()

    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", url)
    return Store(url, names, read)


def seeded(open_system, **settings: Any):
    system = open_system(**settings)
    system.store.ingest("token_transfers", transfer_rows(ROWS))
    return system


async def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"still not true after {WAIT} s: {what}"
        await asyncio.sleep(0.02)


async def test_export_and_download_through_the_store(store, open_system, serve, tmp_path):
    system = seeded(open_system)
    client = await serve(system)
    assert system.storage.url == store.url
    job = await create(client, {"dataset": "token_transfers", "format": "csv"})
    view = await wait_done(system, job["job_id"])
    assert view.status.value == "completed"
    assert store.names() == [view.file_name]  # whole, under its final key, nothing else
    assert not list((tmp_path / "data" / "exports").glob("*"))  # not in the data dir
    stored = store.read(view.file_name)
    assert hashlib.sha256(stored).hexdigest() == view.sha256 and len(stored) == view.bytes

    resp = await client.get(view.download_url, headers=ALICE)
    assert resp.status == 200
    assert await resp.read() == stored
    assert resp.headers["Content-Length"] == str(len(stored))
    assert resp.headers["ETag"] == f'"{view.sha256}"'
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="token_transfers-{view.job_id}.csv"'
    )

    ranged = {**ALICE, "Range": "bytes=100-1099", "If-Range": f'"{view.sha256}"'}
    resp = await client.get(view.download_url, headers=ranged)
    assert resp.status == 206
    assert await resp.read() == stored[100:1100]
    assert resp.headers["Content-Range"] == f"bytes 100-1099/{len(stored)}"
    resp = await client.get(view.download_url, headers={**ALICE, "Range": "bytes=-7"})
    assert resp.status == 206 and await resp.read() == stored[-7:]
    stale = {**ALICE, "Range": "bytes=0-9", "If-Range": '"not-the-tag"'}
    resp = await client.get(view.download_url, headers=stale)
    assert resp.status == 200 and await resp.read() == stored
    resp = await client.get(
        view.download_url, headers={**ALICE, "If-None-Match": resp.headers["ETag"]}
    )
    assert resp.status == 304
    resp = await client.head(view.download_url, headers=ALICE)
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(stored))

    resp = await client.get(view.download_url, headers={**ALICE, "Range": "bytes=-0"})
    assert (await error_of(resp, 416))["code"] == "range_not_satisfiable"
    assert resp.headers["Content-Range"] == f"bytes */{len(stored)}"
    resp = await client.get(view.download_url, headers={**ALICE, "Range": f"bytes={len(stored)}-"})
    assert (await error_of(resp, 416))["code"] == "range_not_satisfiable"
    resp = await client.get(view.download_url, headers={**ALICE, "If-Match": '"other"'})
    assert (await error_of(resp, 412))["code"] == "precondition_failed"


async def test_expiry_removes_the_object(store, open_system, serve):
    system = seeded(open_system, job_ttl_seconds=3)
    client = await serve(system)
    job = await create(client, {"dataset": "token_transfers", "format": "jsonl"})
    view = await wait_done(system, job["job_id"])
    assert store.names() == [view.file_name]
    await eventually(lambda: system.status(view.job_id).status.value == "expired", "expired")
    await eventually(lambda: store.names() == [], "the expired job's object is deleted")
    resp = await client.get(view.download_url, headers=ALICE)
    assert (await error_of(resp, 410))["code"] == "expired"


async def test_cancel_mid_write_leaves_no_object(store, open_system, serve):
    writing, cancelled = threading.Event(), threading.Event()

    def held_after_first_batch(*args: Any, should_stop, on_progress=None, **kwargs: Any):
        def progress(rows: int) -> None:
            writing.set()  # bytes are on their way to the store: hold until the cancel lands
            cancelled.wait(WAIT)

        return export_to_file(
            *args, should_stop=should_stop, on_progress=progress, **{**kwargs, "batch_size": 50}
        )

    system = seeded(open_system, export_fn=held_after_first_batch, max_concurrent_exports=1)
    client = await serve(system)
    job = await create(client, {"dataset": "token_transfers", "format": "csv"})
    assert await asyncio.to_thread(writing.wait, WAIT)
    if store.url.startswith("file:"):  # S3 holds small writes in memory: nothing to see yet
        await eventually(lambda: bool(store.names()), "the attempt's partial is on disk")
        assert store.names()[0].endswith(".attempt1.part")
    resp = await client.delete(f"/v1/export/jobs/{job['job_id']}", headers=ALICE)
    assert resp.status == 200, await resp.text()
    cancelled.set()
    view = await wait_done(system, job["job_id"])
    assert view.status.value == "cancelled" and view.file_name is None
    await eventually(lambda: store.names() == [], "no object, no partial, no upload left")
