"""Create, status, list, cancel and events through the real app and a real system."""

from __future__ import annotations

import pytest

from silverexport.model import JobStatus

from .conftest import ALICE, BOB, Gate, create, error_of, wait_done

CSV = {"dataset": "token_transfers", "format": "csv"}


async def test_create_returns_202_location_and_the_job_document(client, system):
    resp = await client.post("/v1/export/dataset", json={**CSV, "target_id": "t1"}, headers=ALICE)
    assert resp.status == 202
    job = await resp.json()
    assert resp.headers["Location"] == f"/v1/export/jobs/{job['job_id']}"
    assert job["dataset"] == "token_transfers" and job["format"] == "csv"
    assert job["filters"] == {"target_id": "t1", "network": None, "from": None, "to": None}
    assert job["status"] in ("queued", "running", "completed")

    done = await wait_done(system, job["job_id"])
    resp = await client.get(resp.headers["Location"], headers=ALICE)
    assert resp.status == 200
    document = await resp.json()
    assert document == done.to_document()
    assert document["status"] == "completed" and document["rows"] == 60
    assert document["download_url"] == f"/v1/export/jobs/{job['job_id']}/download"


async def test_a_finished_jobs_kept_document_follows_its_expiry_and_stays_its_tenants(
    open_system, serve
):
    system = open_system(job_ttl_seconds=0, expiry_interval_seconds=3600)
    client = await serve(system)
    job = await create(client, CSV)
    done = await wait_done(system, job["job_id"])
    url = f"/v1/export/jobs/{job['job_id']}"
    first = await client.get(url, headers=ALICE)
    again = await client.get(url, headers=ALICE)
    assert first.status == again.status == 200 and first.content_type == "application/json"
    assert await first.read() == await again.read()  # the kept bytes, the same document
    assert await again.json() == done.to_document()
    assert (await error_of(await client.get(url, headers=BOB), 404))["code"] == "not_found"

    system.prune()  # the job expires: a new view, so a new document
    expired = await (await client.get(url, headers=ALICE)).json()
    assert expired["status"] == "expired" and expired["download_url"] is None
    assert expired == system.status(job["job_id"]).to_document()
    assert (await error_of(await client.get(url, headers=BOB), 404))["code"] == "not_found"


@pytest.mark.parametrize(
    "job_id", ["0" * 32, "F" * 32, "1234", "x" * 32, "..%2F..%2Fevents", "0" * 33]
)
async def test_unknown_or_malformed_job_ids_are_404_on_every_route(client, job_id):
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/download"), ("GET", "/events")):
        resp = await client.request(method, f"/v1/export/jobs/{job_id}{suffix}", headers=ALICE)
        error = await error_of(resp, 404)
        assert error["code"] == "not_found"


async def test_events_are_the_jobs_history_from_the_log(client, system):
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])
    resp = await client.get(f"/v1/export/jobs/{job['job_id']}/events", headers=ALICE)
    assert resp.status == 200
    events = (await resp.json())["events"]
    assert [e["type"] for e in events][:2] == ["JobRequested", "JobStarted"]
    assert events[-1]["type"] == "JobCompleted" and events[-1]["data"]["rows"] == 60
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert all(set(e) == {"seq", "version", "type", "data", "recorded_at"} for e in events)
    assert events[0]["data"]["tenant"] == "alice"


async def test_list_is_newest_first_paginated_and_filtered(client, system):
    ids = []
    for i in range(5):
        body = {**CSV, "format": "jsonl"} if i % 2 else CSV
        ids.append((await create(client, body))["job_id"])
    for job_id in ids:
        await wait_done(system, job_id)
    await create(client, {"dataset": "hl_fills", "format": "csv"})

    seen, cursor = [], None
    while True:
        params = {"limit": "2", "dataset": "token_transfers"}
        if cursor:
            params["cursor"] = cursor
        resp = await client.get("/v1/export/jobs", params=params, headers=ALICE)
        assert resp.status == 200
        page = await resp.json()
        assert len(page["jobs"]) <= 2
        seen += [j["job_id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]

    resp = await client.get("/v1/export/jobs", params={"status": "completed"}, headers=ALICE)
    listed = (await resp.json())["jobs"]
    assert {j["job_id"] for j in listed} >= set(ids)
    assert all(j["status"] == "completed" for j in listed)
    resp = await client.get("/v1/export/jobs", headers=ALICE)
    page = await resp.json()
    assert len(page["jobs"]) == 6 and page["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("status=", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=-1", "limit"),
        ("limit=%D9%A3", "limit"),  # an Arabic-Indic digit: int() would take it
        ("limit=9999999999999999999999", "limit"),
        ("limit=1&limit=2", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=", "cursor"),
        ("dataset=nope", "dataset"),
    ],
)
async def test_list_rejects_invalid_parameters(client, query, field):
    resp = await client.get(f"/v1/export/jobs?{query}", headers=ALICE)
    error = await error_of(resp, 400)
    assert field in error["message"]


async def test_cancel_a_queued_or_running_job_then_409(open_system, serve):
    gate = Gate()
    system = open_system(export_fn=gate, max_concurrent_exports=1)
    client = await serve(system)
    running = await create(client, CSV)
    queued = await create(client, CSV)
    for job in (running, queued):
        resp = await client.delete(f"/v1/export/jobs/{job['job_id']}", headers=ALICE)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "cancelled"
    resp = await client.delete(f"/v1/export/jobs/{queued['job_id']}", headers=ALICE)
    error = await error_of(resp, 409)
    assert "cancelled" in error["message"]
    gate.opened.set()


async def test_cancel_a_completed_job_is_409(client, system):
    job = await create(client, CSV)
    await wait_done(system, job["job_id"])
    resp = await client.delete(f"/v1/export/jobs/{job['job_id']}", headers=ALICE)
    assert "completed" in (await error_of(resp, 409))["message"]
    assert system.status(job["job_id"]).status is JobStatus.COMPLETED


async def test_get_on_the_dataset_route_is_405_allow_post(client):
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        resp = await client.request(method, "/v1/export/dataset", headers=ALICE)
        error = await error_of(resp, 405)
        assert resp.headers["Allow"] == "POST" and error["code"] == "method_not_allowed"


async def test_unknown_routes_and_methods_answer_in_the_json_shape(client):
    resp = await client.get("/nope", headers=ALICE)
    assert (await error_of(resp, 404))["code"] == "not_found"
    resp = await client.get("/v1/export/jobs/" + "0" * 32 + "/nope", headers=ALICE)
    await error_of(resp, 404)
    resp = await client.patch("/v1/export/jobs/" + "0" * 32, headers=ALICE)
    await error_of(resp, 405)
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "DELETE"}
    resp = await client.post("/v1/export/jobs", headers=ALICE)
    await error_of(resp, 405)


async def test_healthz_needs_no_key(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
