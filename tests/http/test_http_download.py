"""Downloads: the file as written, its headers, Range, ETag, and 409/410/404."""

from __future__ import annotations

import csv
import gzip
import io

import pytest

from tests.stored import stored_bytes

from .conftest import ALICE, Gate, create, error_of, wait_done


async def completed(client, system, **extra):
    job = await create(client, {"dataset": "token_transfers", "format": "csv", **extra})
    view = await wait_done(system, job["job_id"])
    assert view.status.value == "completed"
    return view


async def test_download_is_the_file_with_its_headers(client, system):
    view = await completed(client, system)
    resp = await client.get(view.download_url, headers=ALICE)
    assert resp.status == 200
    body = await resp.read()
    assert body == stored_bytes(system, view)
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Length"] == str(view.bytes) == str(len(body))
    assert resp.headers["ETag"] == f'"{view.sha256}"'
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="token_transfers-{view.job_id}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    assert len(rows) == 60 and rows[1]["token_symbol"] == 'US"D, C\n'


async def test_jsonl_and_gzip_content_types(client, system):
    jsonl = await completed(client, system, format="jsonl")
    resp = await client.get(jsonl.download_url, headers=ALICE)
    assert resp.headers["Content-Type"] == "application/x-ndjson"
    assert resp.headers["Content-Disposition"].endswith(f'-{jsonl.job_id}.jsonl"')

    gz = await completed(client, system, compression="gzip")
    resp = await client.get(gz.download_url, headers=ALICE, auto_decompress=False)
    assert resp.headers["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in resp.headers
    assert resp.headers["Content-Disposition"].endswith(f'-{gz.job_id}.csv.gz"')
    assert gzip.decompress(await resp.read()).startswith(b"id,target_id,")


async def test_range_requests_are_honoured(client, system):
    view = await completed(client, system)
    whole = stored_bytes(system, view)
    resp = await client.get(view.download_url, headers={**ALICE, "Range": "bytes=10-19"})
    assert resp.status == 206
    assert await resp.read() == whole[10:20]
    assert resp.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
    resp = await client.get(view.download_url, headers={**ALICE, "Range": "bytes=-5"})
    assert resp.status == 206 and await resp.read() == whole[-5:]
    resp = await client.get(view.download_url, headers={**ALICE, "Range": f"bytes={len(whole)}-"})
    await error_of(resp, 416)


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=abc", "items=0-1"])
async def test_a_range_that_cannot_be_honoured_gets_the_whole_file(client, system, header):
    view = await completed(client, system)
    resp = await client.get(view.download_url, headers={**ALICE, "Range": header})
    assert resp.status == 200
    assert await resp.read() == stored_bytes(system, view)


async def test_etag_is_the_sha256_for_conditional_requests(client, system):
    view = await completed(client, system)
    tag = f'"{view.sha256}"'
    resp = await client.get(view.download_url, headers={**ALICE, "If-None-Match": tag})
    assert resp.status == 304 and resp.headers["ETag"] == tag
    resp = await client.get(view.download_url, headers={**ALICE, "If-None-Match": '"other"'})
    assert resp.status == 200
    resp = await client.get(view.download_url, headers={**ALICE, "If-Match": tag})
    assert resp.status == 200
    resp = await client.get(view.download_url, headers={**ALICE, "If-Match": '"other"'})
    await error_of(resp, 412)


async def test_head_gives_the_headers_only(client, system):
    view = await completed(client, system)
    resp = await client.head(view.download_url, headers=ALICE)
    assert resp.status == 200 and resp.headers["Content-Length"] == str(view.bytes)


async def test_409_while_queued_or_running_and_after_cancel(open_system, serve):
    gate = Gate()
    system = open_system(export_fn=gate, max_concurrent_exports=1)
    client = await serve(system)
    running = await create(client, {"dataset": "token_transfers", "format": "csv"})
    queued = await create(client, {"dataset": "token_transfers", "format": "csv"})
    for job, status in ((running, "running"), (queued, "queued")):
        url = f"/v1/export/jobs/{job['job_id']}"
        current = await (await client.get(url, headers=ALICE)).json()
        assert current["status"] == status
        error = await error_of(await client.get(f"{url}/download", headers=ALICE), 409)
        assert status in error["message"]
        assert error["code"] == "not_completed"
    assert (await client.delete(f"/v1/export/jobs/{queued['job_id']}", headers=ALICE)).status == 200
    resp = await client.get(f"/v1/export/jobs/{queued['job_id']}/download", headers=ALICE)
    assert "cancelled" in (await error_of(resp, 409))["message"]
    gate.opened.set()


async def test_409_for_a_failed_job(open_system, serve):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    system = open_system(export_fn=broken)
    client = await serve(system)
    job = await create(client, {"dataset": "token_transfers", "format": "csv"})
    assert (await wait_done(system, job["job_id"])).status.value == "failed"
    resp = await client.get(f"/v1/export/jobs/{job['job_id']}/download", headers=ALICE)
    assert "failed" in (await error_of(resp, 409))["message"]


async def test_410_once_expired(open_system, serve):
    system = open_system(job_ttl_seconds=0, expiry_interval_seconds=3600)
    system.store.ingest("token_transfers", [])
    client = await serve(system)
    job = await create(client, {"dataset": "token_transfers", "format": "jsonl"})
    await wait_done(system, job["job_id"])
    system.prune()
    resp = await client.get(f"/v1/export/jobs/{job['job_id']}/download", headers=ALICE)
    assert (await error_of(resp, 410))["code"] == "expired"
    resp = await client.get(f"/v1/export/jobs/{job['job_id']}", headers=ALICE)
    assert (await resp.json())["status"] == "expired"


@pytest.mark.parametrize(
    "if_range",
    [
        '"0000000000000000000000000000000000000000000000000000000000000000"',  # a stale tag
        "weak",  # W/ + the current tag: a weak tag never allows a range
        "Wed, 21 Oct 2099 07:28:00 GMT",  # a date, even one after the file was written
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "garbage",
    ],
)
async def test_if_range_other_than_the_current_strong_etag_gets_the_whole_file(
    client, system, if_range
):
    view = await completed(client, system)
    if if_range == "weak":
        if_range = f'W/"{view.sha256}"'
    headers = {**ALICE, "Range": "bytes=10-19", "If-Range": if_range}
    resp = await client.get(view.download_url, headers=headers)
    assert resp.status == 200
    assert "Content-Range" not in resp.headers
    assert await resp.read() == stored_bytes(system, view)


async def test_if_range_with_the_current_strong_etag_allows_the_range(client, system):
    view = await completed(client, system)
    whole = stored_bytes(system, view)
    headers = {**ALICE, "Range": "bytes=10-19", "If-Range": f'"{view.sha256}"'}
    resp = await client.get(view.download_url, headers=headers)
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
    assert await resp.read() == whole[10:20]


@pytest.mark.parametrize("header", ["bytes=-0", "bytes=-000", "BYTES=-0"])
async def test_an_empty_suffix_range_is_unsatisfiable(client, system, header):
    view = await completed(client, system)
    resp = await client.get(view.download_url, headers={**ALICE, "Range": header})
    error = await error_of(resp, 416)
    assert error["code"] == "range_not_satisfiable" and str(view.bytes) in error["message"]
    assert resp.headers["Content-Range"] == f"bytes */{view.bytes}"
    assert "Content-Disposition" not in resp.headers


async def test_an_unsatisfiable_range_still_yields_to_a_failed_precondition(client, system):
    view = await completed(client, system)
    headers = {**ALICE, "Range": "bytes=-0", "If-Match": '"other"'}
    assert (await error_of(await client.get(view.download_url, headers=headers), 412))["code"] == (
        "precondition_failed"
    )


async def test_an_unsatisfiable_range_yields_to_not_modified(client, system):
    view = await completed(client, system)
    headers = {**ALICE, "Range": "bytes=-0", "If-None-Match": f'"{view.sha256}"'}
    assert (await client.get(view.download_url, headers=headers)).status == 304


async def test_a_start_past_the_end_is_a_json_416(client, system):
    view = await completed(client, system)
    resp = await client.get(view.download_url, headers={**ALICE, "Range": f"bytes={view.bytes}-"})
    await error_of(resp, 416)
    assert resp.headers["Content-Range"] == f"bytes */{view.bytes}"
    assert "Content-Disposition" not in resp.headers
    resp = await client.head(view.download_url, headers={**ALICE, "Range": "bytes=-0"})
    assert resp.status == 416 and resp.headers["Content-Range"] == f"bytes */{view.bytes}"


@pytest.mark.parametrize(
    "header",
    [
        ("If-Match", '"nope"'),
        ("If-Match", 'W/"{sha}"'),
        ("If-Unmodified-Since", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ],
)
async def test_a_failed_precondition_is_a_json_412(client, system, header):
    view = await completed(client, system)
    name, value = header
    resp = await client.get(
        view.download_url, headers={**ALICE, name: value.format(sha=view.sha256)}
    )
    error = await error_of(resp, 412)
    assert error["code"] == "precondition_failed"
    assert "Content-Disposition" not in resp.headers


@pytest.mark.parametrize("value", ["*", '"other", "{sha}"'])
async def test_a_matching_if_match_sends_the_file(client, system, value):
    view = await completed(client, system)
    resp = await client.get(
        view.download_url,
        headers={**ALICE, "If-Match": value.format(sha=view.sha256), "Range": "bytes=0-1"},
    )
    assert resp.status == 206
    assert await resp.read() == stored_bytes(system, view)[:2]
