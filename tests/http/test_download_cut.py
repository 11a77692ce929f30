"""A download from S3 whose object goes away, or whose store connection breaks, after the
headers are out (expiry racing a download, a store failing mid-stream).

The status line and Content-Length are sent by then, so the only honest answer left is to cut
the connection short of that length: the client sees an incomplete body, never a short one
that looks whole. The service logs one warning, no error and no traceback: the store failed,
not the code. Real SeaweedFS; the break is a real loopback proxy closing its connections.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

import aiohttp
import pytest

from .conftest import ALICE, WAIT, create, transfer_rows, wait_done
from .cut_proxy import CutProxy

ROWS = 130
SYMBOL = "S" * (64 << 10)  # long rows: an 8 MiB file, several read chunks, from few rows
CUT_AFTER = 3 << 20  # more than the first chunk (read before any header), less than the file


@pytest.fixture
def s3_target(s3_server, s3_bucket):
    proxy = CutProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))
    yield s3_server, s3_bucket, proxy
    proxy.close()


async def completed_job(open_system, serve, bucket: str, endpoint: str):
    system = open_system(storage_url=f"s3://{bucket}/exports/", s3_endpoint_url=endpoint)
    rows = [row | {"token_symbol": SYMBOL} for row in transfer_rows(ROWS)]
    system.store.ingest("token_transfers", rows)
    client = await serve(system)
    job = await create(client, {"dataset": "token_transfers", "format": "csv"})
    view = await wait_done(system, job["job_id"])
    assert view.status.value == "completed" and view.bytes > CUT_AFTER + (2 << 20)
    return system, client, view


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def warned(caplog, text: str) -> list[str]:
    deadline = time.monotonic() + WAIT
    while not (found := [r.getMessage() for r in caplog.records if text in r.getMessage()]):
        assert time.monotonic() < deadline, f"no log line with {text!r}"
        await asyncio.sleep(0.02)
    return found


async def test_a_store_connection_broken_mid_download_cuts_the_client_off(
    s3_target, open_system, serve, caplog
):
    _, bucket, proxy = s3_target
    caplog.set_level(logging.WARNING)
    _, client, view = await completed_job(open_system, serve, bucket, proxy.url)
    proxy.arm(CUT_AFTER)
    resp = await client.get(view.download_url, headers=ALICE)
    assert resp.status == 200 and resp.headers["Content-Length"] == str(view.bytes)
    got = bytearray()
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in resp.content.iter_any():
            got += chunk
    assert 0 < len(got) < view.bytes
    (line,) = await warned(caplog, f"download of job {view.job_id} cut after")
    assert f"of {view.bytes} bytes" in line
    assert proxy.cuts >= 1 and errors(caplog) == []

    proxy.limit = None  # the store is back: the next download is whole
    resp = await client.get(view.download_url, headers=ALICE)
    assert hashlib.sha256(await resp.read()).hexdigest() == view.sha256


async def test_an_object_deleted_mid_download_ends_whole_or_cut_never_short(
    s3_target, open_system, serve, caplog
):
    server, bucket, _ = s3_target
    caplog.set_level(logging.WARNING)
    system, client, view = await completed_job(open_system, serve, bucket, server.endpoint_url)
    resp = await client.get(view.download_url, headers=ALICE)
    assert resp.status == 200
    got = bytearray(await resp.content.readexactly(1 << 20))
    await asyncio.to_thread(
        server.client().delete_object, Bucket=bucket, Key=f"exports/{view.file_name}"
    )
    assert await asyncio.to_thread(system.storage.size, view.file_name) is None
    try:
        async for chunk in resp.content.iter_any():
            got += chunk
    except aiohttp.ClientPayloadError:  # the store stopped serving it: cut short, as it must
        assert len(got) < view.bytes
        await warned(caplog, f"download of job {view.job_id} cut after")
    else:  # the store finished the read it had begun (SeaweedFS and S3 do): the whole file
        assert len(got) == view.bytes and hashlib.sha256(got).hexdigest() == view.sha256
    assert errors(caplog) == []
    resp = await client.get(view.download_url, headers=ALICE)
    assert resp.status == 410  # a new download after the delete is refused before any byte
