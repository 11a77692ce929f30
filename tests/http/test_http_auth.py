"""Bearer keys and tenants: 401 without a good key, 404 for another tenant's job everywhere."""

from __future__ import annotations

import pytest

from silverexport.errors import ValidationError
from silverexport.http.auth import ApiKeys, bearer_token

from .conftest import ALICE, BOB, WALLET, create, error_of, wait_done

JOB = "0" * 32
V1_ROUTES = [
    ("POST", "/v1/export/dataset"),
    ("GET", "/v1/export/dataset"),
    ("GET", "/v1/export/jobs"),
    ("GET", f"/v1/export/jobs/{JOB}"),
    ("DELETE", f"/v1/export/jobs/{JOB}"),
    ("GET", f"/v1/export/jobs/{JOB}/download"),
    ("GET", f"/v1/export/jobs/{JOB}/events"),
    ("GET", f"/v1/export/{WALLET}"),
]


@pytest.mark.parametrize(("method", "path"), V1_ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong",
        "Bearer ",
        "Basic azE=",
        "k1",
        "Bearer k1x",
        "Bearer K1",
        "Bearer k1 k2",
    ],
)
async def test_every_v1_route_needs_a_good_key(client, method, path, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    resp = await client.request(method, path, headers=headers)
    error = await error_of(resp, 401)
    assert error["code"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_the_scheme_is_case_insensitive(client):
    resp = await client.get("/v1/export/jobs", headers={"Authorization": "bearer k1"})
    assert resp.status == 200


async def test_openapi_and_healthz_need_no_key(client):
    assert (await client.get("/v1/openapi.json")).status == 200
    assert (await client.get("/healthz")).status == 200


async def test_another_tenants_job_is_404_on_every_route(client, system):
    job = await create(client, {"dataset": "token_transfers", "format": "csv"}, headers=ALICE)
    job_id = job["job_id"]
    await wait_done(system, job_id)
    for method, suffix in (("GET", ""), ("GET", "/download"), ("GET", "/events"), ("DELETE", "")):
        resp = await client.request(method, f"/v1/export/jobs/{job_id}{suffix}", headers=BOB)
        await error_of(resp, 404)
    resp = await client.get("/v1/export/jobs", headers=BOB)
    assert (await resp.json())["jobs"] == []
    resp = await client.get("/v1/export/jobs", params={"status": "completed"}, headers=ALICE)
    assert [j["job_id"] for j in (await resp.json())["jobs"]] == [job_id]
    # ... and Bob's cancel did nothing.
    resp = await client.get(f"/v1/export/jobs/{job_id}", headers=ALICE)
    assert (await resp.json())["status"] == "completed"


def test_keys_parse_tenants_and_compare_exactly():
    keys = ApiKeys.parse(" alice:k1, bob:k:2 ,,alice:k3")
    assert keys.tenant_for("k1") == "alice"
    assert keys.tenant_for("k:2") == "bob"
    assert keys.tenant_for("k3") == "alice"
    assert keys.tenant_for("k") is None and keys.tenant_for("\udcff") is None
    assert ApiKeys.parse("").tenant_for("") is None


@pytest.mark.parametrize("text", ["alice", "alice:", ":k1", "alice:k1,bob:k1"])
def test_bad_key_lists_are_refused(text):
    with pytest.raises(ValidationError):
        ApiKeys.parse(text)


def test_bearer_token():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("BEARER  abc ") == "abc"
    assert bearer_token("Bearer") is None
    assert bearer_token("Token abc") is None
