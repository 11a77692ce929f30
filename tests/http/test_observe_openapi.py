"""The stream, /metrics and dashboard routes answer as the OpenAPI document says."""

from __future__ import annotations

from silverexport.http.openapi import openapi_document

from .conftest import ALICE, BOB, create, wait_done
from .test_http_openapi import Conformance


async def test_live_and_operations_routes_match_the_document(client, system):
    doc = Conformance(openapi_document(system.settings))
    job = await create(client, {"dataset": "token_transfers", "format": "csv"})
    await wait_done(system, job["job_id"])
    stream_t = "/v1/export/jobs/{job_id}/stream"
    url = f"/v1/export/jobs/{job['job_id']}/stream"
    for resp in (
        await client.get(url, headers=ALICE),
        await client.get(url, params={"after": "1"}, headers=ALICE),
        await client.get(url, params={"after": "x"}, headers=ALICE),
        await client.get(url, headers=BOB),
        await client.get(url),
    ):
        await doc.check("GET", stream_t, resp)
    await doc.check("GET", "/metrics", await client.get("/metrics"))
    await doc.check("GET", "/ui/", await client.get("/ui/"))
    redirect = await client.get("/ui", allow_redirects=False)
    assert redirect.headers["Location"] == "/ui/"
    await doc.check("GET", "/ui", redirect)
    for asset in ("dashboard.js", "dashboard.css", "index.html", "nope.js"):
        await doc.check("GET", "/ui/{asset}", await client.get(f"/ui/{asset}"))
    assert {(t, s) for _, t, s in doc.seen} >= {
        (stream_t, 200),
        (stream_t, 400),
        (stream_t, 401),
        (stream_t, 404),
        ("/ui/{asset}", 404),
        ("/ui", 308),
    }
