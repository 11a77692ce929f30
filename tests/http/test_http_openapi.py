"""The OpenAPI document: valid OpenAPI 3.1, complete, and true of real responses."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
from schemathesis.specs.openapi.definitions import OPENAPI_31

from silverexport import ExportRequest
from silverexport.http.openapi import openapi_document

from .conftest import ALICE, BOB, WALLET, Gate, create, transfer_rows, wait_done

CSV = {"dataset": "token_transfers", "format": "csv"}


def test_the_document_is_valid_openapi_3_1(system):
    document = openapi_document(system.settings)
    jsonschema.Draft202012Validator(OPENAPI_31).validate(document)
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_download_refusals_are_documented_as_the_error_shape(system):
    download = openapi_document(system.settings)["paths"]["/v1/export/jobs/{job_id}/download"]
    responses = download["get"]["responses"]
    for status in ("412", "416"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, status
    assert responses["416"]["headers"]["Content-Range"]["required"] is True


async def test_served_without_auth_and_equal_to_the_built_document(client, system):
    resp = await client.get("/v1/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == orjson.loads(orjson.dumps(openapi_document(system.settings)))


async def test_every_route_is_documented_and_every_documented_route_exists(client, system):
    routed, any_method = set(), set()
    for route in client.app.router.routes():
        if route.method == "*":  # a resource that answers every other method itself (405)
            any_method.add(route.resource.canonical)
        elif route.method != "HEAD":
            routed.add((route.method.lower(), route.resource.canonical))
    documented = {
        (method, path)
        for path, item in openapi_document(system.settings)["paths"].items()
        for method in item
        if method in ("get", "post", "delete", "put", "patch")
    }
    assert routed <= documented
    assert {(m, p) for m, p in documented - routed if p not in any_method} == set()


class Conformance:
    """Checks a real response against the document: status, media type, headers, body."""

    def __init__(self, document: dict[str, Any]):
        self.document = document
        self.seen: set[tuple[str, str, int]] = set()

    def _schema(self, pointer: str) -> jsonschema.Draft202012Validator:
        root = {**self.document, "$ref": pointer}  # resolves #/components/... in the document
        return jsonschema.Draft202012Validator(root)

    async def check(self, method: str, template: str, resp) -> None:
        operation = self.document["paths"][template][method.lower()]
        documented = operation["responses"]
        status = str(resp.status)
        assert status in documented, f"{method} {template}: {status} is not documented"
        response = documented[status]
        body = await resp.read()
        for name, header in response.get("headers", {}).items():
            if header.get("required"):
                assert name in resp.headers, f"{method} {template} {status}: no {name}"
        content = response.get("content")
        if not content:
            assert body == b"", f"{method} {template} {status}: undocumented body"
        else:
            media = resp.headers["Content-Type"]
            assert media in content, f"{method} {template} {status}: {media} not documented"
            if media == "application/json":
                escaped = template.replace("~", "~0").replace("/", "~1")
                pointer = (
                    f"#/paths/{escaped}/{method.lower()}/responses/{status}"
                    "/content/application~1json/schema"
                )
                self._schema(pointer).validate(orjson.loads(body))
        self.seen.add((method.upper(), template, resp.status))


async def test_real_responses_match_the_document(open_system, serve):
    gate = Gate()
    system = open_system(
        export_fn=gate,
        max_concurrent_exports=1,
        max_body_bytes=2048,
    )
    system.store.ingest("token_transfers", transfer_rows(20))
    client = await serve(system)
    doc = Conformance(openapi_document(system.settings))
    job_t, dl_t, ev_t = (
        "/v1/export/jobs/{job_id}",
        "/v1/export/jobs/{job_id}/download",
        "/v1/export/jobs/{job_id}/events",
    )
    post = "/v1/export/dataset"

    await doc.check("GET", "/healthz", await client.get("/healthz"))
    await doc.check("GET", "/v1/openapi.json", await client.get("/v1/openapi.json"))

    resp = await client.post(post, json=CSV, headers={**ALICE, "Idempotency-Key": "k"})
    running = await resp.json()
    await doc.check("POST", post, resp)
    await doc.check(
        "POST", post, await client.post(post, json=CSV, headers={**ALICE, "Idempotency-Key": "k"})
    )
    await doc.check(
        "POST",
        post,
        await client.post(
            post, json={**CSV, "limit": 2}, headers={**ALICE, "Idempotency-Key": "k"}
        ),
    )
    await doc.check("POST", post, await client.post(post, json={**CSV, "x": 1}, headers=ALICE))
    await doc.check("POST", post, await client.post(post, json=CSV))
    await doc.check(
        "POST",
        post,
        await client.post(
            post, data="x" * 4096, headers={**ALICE, "Content-Type": "application/json"}
        ),
    )
    await doc.check(
        "POST",
        post,
        await client.post(post, data="{", headers={**ALICE, "Content-Type": "text/plain"}),
    )
    queued = await create(client, CSV)

    url = f"/v1/export/jobs/{running['job_id']}"
    qurl = f"/v1/export/jobs/{queued['job_id']}"
    unknown = "/v1/export/jobs/" + "0" * 32
    for template, suffix in ((job_t, ""), (dl_t, "/download"), (ev_t, "/events")):
        await doc.check("GET", template, await client.get(url + suffix, headers=ALICE))
        await doc.check("GET", template, await client.get(unknown + suffix, headers=ALICE))
        await doc.check(
            "GET",
            template,
            await client.get(url + suffix, headers=BOB | {"Authorization": "Bearer no"}),
        )
    await doc.check("DELETE", job_t, await client.delete(qurl, headers=ALICE))
    await doc.check("DELETE", job_t, await client.delete(qurl, headers=ALICE))
    await doc.check("DELETE", job_t, await client.delete(unknown, headers=ALICE))
    gate.opened.set()
    view = await wait_done(system, running["job_id"])
    size = view.bytes
    for headers in (
        {},
        {"Range": "bytes=0-9"},
        {"Range": f"bytes={size}-"},
        {"If-None-Match": f'"{view.sha256}"'},
        {"If-Match": '"nope"'},
    ):
        await doc.check("GET", dl_t, await client.get(url + "/download", headers=ALICE | headers))
    await doc.check("GET", job_t, await client.get(url, headers=ALICE))
    await doc.check("GET", ev_t, await client.get(url + "/events", headers=ALICE))
    # An expired job: another system on the same data dir keeps files for no time at all.
    other = open_system(job_ttl_seconds=0)
    gone = other.submit(ExportRequest(dataset="token_transfers", format="csv"), tenant="alice")
    other.wait(gone.job_id, timeout=30)
    system.wait(gone.job_id, timeout=30)  # the serving system has read its end too
    gone_url = f"/v1/export/jobs/{gone.job_id}/download"
    await doc.check("GET", dl_t, await client.get(gone_url, headers=ALICE))

    jobs_t = "/v1/export/jobs"
    await doc.check("GET", jobs_t, await client.get(jobs_t, headers=ALICE))
    page = await (await client.get(jobs_t, params={"limit": "1"}, headers=ALICE)).json()
    await doc.check(
        "GET",
        jobs_t,
        await client.get(
            jobs_t, params={"limit": "1", "cursor": page["next_cursor"]}, headers=ALICE
        ),
    )
    await doc.check("GET", jobs_t, await client.get(jobs_t, params={"limit": "0"}, headers=ALICE))
    await doc.check("GET", jobs_t, await client.get(jobs_t))

    wallet_t = "/v1/export/{wallet}"
    for query in ({}, {"format": "csv"}, {"format": "xml"}):
        await doc.check(
            "GET", wallet_t, await client.get(f"/v1/export/{WALLET}", params=query, headers=ALICE)
        )
    await doc.check("GET", wallet_t, await client.get("/v1/export/0x12", headers=ALICE))
    await doc.check("GET", wallet_t, await client.get(f"/v1/export/{WALLET}"))

    statuses = {(m, t, s) for m, t, s in doc.seen}
    for expected in [
        ("POST", post, 202),
        ("POST", post, 200),
        ("POST", post, 409),
        ("POST", post, 413),
        ("GET", dl_t, 206),
        ("GET", dl_t, 304),
        ("GET", dl_t, 409),
        ("GET", dl_t, 410),
        ("GET", dl_t, 412),
        ("GET", dl_t, 416),
        ("DELETE", job_t, 409),
    ]:
        assert expected in statuses, expected
