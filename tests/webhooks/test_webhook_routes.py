"""The webhook routes: shapes, tenancy, validation, refusal of private targets."""

from __future__ import annotations

import pytest

from silverexport.http.common import SYSTEM
from silverexport.http.openapi import openapi_document

from ..http.conftest import error_of
from ..http.test_http_openapi import Conformance
from .conftest import ALICE, BOB
from .resolver import TableResolver

PUBLIC = "93.184.215.14"  # never contacted: these tests run no job


@pytest.fixture
async def hooks_client(open_system, serve):
    resolver = TableResolver(
        {
            "hooks.example.com": [PUBLIC],
            "localhost": ["127.0.0.1", "::1"],
            "sneaky.example.com": [PUBLIC, "10.1.2.3"],
            "metadata.example.com": ["169.254.169.254"],
            "inside.example.com": ["10.9.8.7"],
        }
    )
    system = open_system(
        webhook_resolver=resolver, deliver_webhooks=False, webhook_allow_hosts="inside.example.com"
    )
    client = await serve(system)
    client.resolver = resolver
    return client


async def test_register_list_delete(hooks_client):
    client = hooks_client
    resp = await client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/a", "events": ["job.failed"]},
        headers=ALICE,
    )
    assert resp.status == 201
    hook = await resp.json()
    # SPEC §9's order, as sent on the wire (json() keeps the order of the body's keys)
    assert list(hook) == ["webhook_id", "url", "events", "secret", "created_at"]
    assert hook["url"] == "https://hooks.example.com/a" and hook["events"] == ["job.failed"]
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    resp = await client.post(
        "/v1/webhooks", json={"url": "http://hooks.example.com:8080/b"}, headers=ALICE
    )
    second = await resp.json()
    assert second["events"] == ["job.completed", "job.failed", "job.cancelled", "job.expired"]
    assert second["secret"] != hook["secret"]

    listed = await (await client.get("/v1/webhooks", headers=ALICE)).json()
    assert [h["webhook_id"] for h in listed["webhooks"]] == [
        hook["webhook_id"],
        second["webhook_id"],
    ]
    assert all("secret" not in h for h in listed["webhooks"])
    assert listed["webhooks"][0] == {k: v for k, v in hook.items() if k != "secret"}

    # Bob sees none of them and cannot delete them.
    assert await (await client.get("/v1/webhooks", headers=BOB)).json() == {"webhooks": []}
    resp = await client.delete(f"/v1/webhooks/{hook['webhook_id']}", headers=BOB)
    assert (await error_of(resp, 404))["code"] == "not_found"

    resp = await client.delete(f"/v1/webhooks/{hook['webhook_id']}", headers=ALICE)
    assert resp.status == 204 and await resp.read() == b""
    resp = await client.delete(f"/v1/webhooks/{hook['webhook_id']}", headers=ALICE)
    await error_of(resp, 404)
    listed = await (await client.get("/v1/webhooks", headers=ALICE)).json()
    assert [h["webhook_id"] for h in listed["webhooks"]] == [second["webhook_id"]]
    for bad_id in ("nope", "wh_" + "0" * 32, "../x"):
        await error_of(await client.delete(f"/v1/webhooks/{bad_id}", headers=ALICE), 404)
    await error_of(await client.get("/v1/webhooks"), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": 5}, "url"),
        ({"url": "ftp://hooks.example.com/"}, "http"),
        ({"url": "hooks.example.com/x"}, "http"),
        ({"url": "https:///nohost"}, "host"),
        ({"url": "https://user:pw@hooks.example.com/"}, "password"),
        ({"url": "https://hooks.example.com/#frag"}, "fragment"),
        ({"url": "https://hooks.example.com:99999/"}, "url"),
        ({"url": "https://hooks.example.com/ x"}, "spaces"),
        ({"url": "https://" + "a" * 3000 + ".com/"}, "longer"),
        ({"url": "https://hooks.example.com/", "events": ["job.done"]}, "events"),
        ({"url": "https://hooks.example.com/", "events": []}, "events"),
        ({"url": "https://hooks.example.com/", "events": "job.failed"}, "events"),
        (
            {"url": "https://hooks.example.com/", "events": ["job.failed", "job.failed"]},
            "events",
        ),
        ({"url": "https://hooks.example.com/", "secret": "mine"}, "secret"),
        ({"url": "https://unknown.example.com/"}, "does not resolve"),
    ],
)
async def test_invalid_registrations_are_400_naming_the_field(hooks_client, body, field):
    resp = await hooks_client.post("/v1/webhooks", json=body, headers=ALICE)
    error = await error_of(resp, 400)
    assert field in error["message"], error
    listed = await (await hooks_client.get("/v1/webhooks", headers=ALICE)).json()
    assert listed == {"webhooks": []}  # nothing was recorded


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/", "loopback"),
        ("http://127.8.9.10/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.20/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://100.64.0.1/", "public"),  # carrier-grade NAT
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://metadata.example.com/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://240.0.0.1/", "reserved"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 around 127.0.0.1
        ("http://sneaky.example.com/", "10.1.2.3"),  # one private address is enough
        ("http://2130706433/", "canonical"),
        ("http://127.1/", "canonical"),
    ],
)
async def test_private_targets_are_refused_at_registration(hooks_client, url, why):
    resp = await hooks_client.post("/v1/webhooks", json={"url": url}, headers=ALICE)
    error = await error_of(resp, 400)
    assert why in error["message"], error
    assert (await (await hooks_client.get("/v1/webhooks", headers=ALICE)).json())["webhooks"] == []


async def test_the_allow_list_admits_a_private_host_by_name(hooks_client):
    resp = await hooks_client.post(
        "/v1/webhooks", json={"url": "http://inside.example.com/hook"}, headers=ALICE
    )
    assert resp.status == 201, await resp.text()


async def test_webhook_responses_match_the_document(hooks_client):
    client = hooks_client
    doc = Conformance(openapi_document(client.app[SYSTEM].settings))
    post, one = "/v1/webhooks", "/v1/webhooks/{webhook_id}"
    resp = await client.post(post, json={"url": "https://hooks.example.com/"}, headers=ALICE)
    created = await resp.json()
    schema = doc.document["components"]["schemas"]["WebhookCreated"]
    assert list(schema["properties"]) == schema["required"] == list(created)
    resp = await client.post(post, json={"url": "https://hooks.example.com/"}, headers=ALICE)
    await doc.check("POST", post, resp)
    await doc.check("POST", post, await client.post(post, json={"url": "x"}, headers=ALICE))
    await doc.check("POST", post, await client.post(post, json={"url": "x"}))
    await doc.check("GET", post, await client.get(post, headers=ALICE))
    await doc.check("GET", post, await client.get(post, params={"x": "1"}, headers=ALICE))
    await doc.check("GET", post, await client.get(post))
    url = f"/v1/webhooks/{created['webhook_id']}"
    await doc.check("DELETE", one, await client.delete(url, headers=BOB))
    await doc.check("DELETE", one, await client.delete(url, headers=ALICE))
    await doc.check("DELETE", one, await client.delete(url))
    seen = {(m, s) for m, _, s in doc.seen}
    assert {("POST", 201), ("POST", 400), ("GET", 200), ("DELETE", 204), ("DELETE", 404)} <= seen
