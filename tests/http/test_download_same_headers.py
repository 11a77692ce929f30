"""Downloads from S3 answer exactly as downloads from a directory (sendfile) do.

The same rows exported by two systems, one per store, give the same file; every request in
the table below must then get the same status, headers and body from both (the job id in
Content-Disposition aside). The directory side is aiohttp's FileResponse, the reference for
Range, If-Range and the conditional requests; the S3 side is our own streamed response.
"""

from __future__ import annotations

import pytest

from .conftest import ALICE, create, transfer_rows, wait_done

COMPARED = (
    "Content-Length",
    "Content-Range",
    "Content-Type",
    "Content-Disposition",
    "ETag",
    "Accept-Ranges",
)


def requests(etag: str, size: int) -> list[tuple[str, dict[str, str]]]:
    return [
        ("GET", {}),
        ("HEAD", {}),
        ("GET", {"Range": "bytes=0-0"}),
        ("GET", {"Range": "bytes=100-1099"}),
        ("GET", {"Range": "bytes=5-"}),
        ("GET", {"Range": "bytes=-7"}),
        ("GET", {"Range": f"bytes=-{size * 2}"}),  # a suffix longer than the file
        ("GET", {"Range": f"bytes=10-{size * 2}"}),  # an end past the file
        ("GET", {"Range": f"bytes={size - 1}-"}),
        ("GET", {"Range": "bytes=0-1,5-6"}),  # several ranges: the whole file
        ("GET", {"Range": "bytes=abc"}),  # malformed: the whole file
        ("GET", {"Range": "bytes=-0"}),  # 416
        ("GET", {"Range": f"bytes={size}-"}),  # 416
        ("HEAD", {"Range": "bytes=100-1099"}),
        ("GET", {"Range": "bytes=0-9", "If-Range": etag}),
        ("GET", {"Range": "bytes=0-9", "If-Range": '"stale"'}),
        ("GET", {"Range": "bytes=0-9", "If-Range": f"W/{etag}"}),
        ("GET", {"Range": "bytes=0-9", "If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        ("GET", {"If-None-Match": etag}),
        ("GET", {"If-None-Match": f"W/{etag}"}),
        ("GET", {"If-None-Match": '"other"'}),
        ("GET", {"If-None-Match": "*"}),
        ("GET", {"If-Match": etag}),
        ("GET", {"If-Match": '"other"'}),
        ("GET", {"If-Match": etag, "Range": "bytes=3-4"}),
    ]


async def answer(client, view, method: str, headers: dict[str, str]):
    resp = await client.request(method, view.download_url, headers={**ALICE, **headers})
    body = await resp.read()
    kept = {h: resp.headers.get(h) for h in COMPARED}
    if kept["Content-Disposition"]:
        kept["Content-Disposition"] = kept["Content-Disposition"].replace(view.job_id, "<id>")
    if resp.content_type == "application/json":  # an error: the same code, the same words
        body = body.replace(view.job_id.encode(), b"<id>")
    return resp.status, kept, body


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_s3_downloads_answer_as_directory_downloads(
    s3_server, s3_bucket, open_system, serve, tmp_path, fmt
):
    stores = {
        "file": {"storage_url": (tmp_path / "shared").as_uri()},
        "s3": {
            "storage_url": f"s3://{s3_bucket}/exports/",
            "s3_endpoint_url": s3_server.endpoint_url,
        },
    }
    served = {}
    for name, settings in stores.items():
        system = open_system(data_dir=tmp_path / name, **settings)
        system.store.ingest("token_transfers", transfer_rows(3000))
        client = await serve(system)
        job = await create(client, {"dataset": "token_transfers", "format": fmt})
        view = await wait_done(system, job["job_id"])
        assert view.status.value == "completed"
        served[name] = (system, client, view)
    assert served["file"][0].file_path(served["file"][2]) is not None  # sendfile, the reference
    assert served["s3"][0].file_path(served["s3"][2]) is None  # streamed from the bucket
    file_view, s3_view = served["file"][2], served["s3"][2]
    assert (file_view.sha256, file_view.bytes) == (s3_view.sha256, s3_view.bytes)

    for method, headers in requests(f'"{file_view.sha256}"', file_view.bytes):
        from_file = await answer(served["file"][1], file_view, method, headers)
        from_s3 = await answer(served["s3"][1], s3_view, method, headers)
        assert from_s3 == from_file, (method, headers)
