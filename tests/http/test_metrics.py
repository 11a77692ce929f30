"""GET /metrics (SPEC §10): the names and labels, values that move, bounded labels."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from silverexport.http.openapi import openapi_document
from silverexport.metrics import UNMATCHED_ROUTE

from .conftest import ALICE, Gate, create, transfer_rows, wait_done
from .sse import SSEReader

CSV = {"dataset": "token_transfers", "format": "csv"}
# name -> (type, label names of its samples), as SPEC §10 lists them
EXPECTED = {
    "silverexport_jobs": ("gauge", {"status"}),
    "silverexport_jobs_finished": ("counter", {"status", "dataset", "format"}),
    "silverexport_export_rows": ("counter", {"dataset", "format"}),
    "silverexport_export_seconds": ("histogram", set()),
    "silverexport_event_append_seconds": ("histogram", set()),
    "silverexport_http_requests": ("counter", {"route", "method", "status"}),
    "silverexport_http_request_seconds": ("histogram", {"route"}),
    "silverexport_slots": ("gauge", {"side", "state"}),
    "silverexport_webhook_deliveries": ("counter", {"outcome"}),
}


class Scrape:
    """One scrape, parsed with the client library's own parser."""

    def __init__(self, text: str):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, sample_name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 if absent: a counter not yet incremented)."""
        for family in self.families.values():
            for sample in family.samples:
                if sample.name == sample_name and sample.labels == labels:
                    return sample.value
        return 0.0

    def labels_of(self, sample_name: str) -> list[dict[str, str]]:
        return [
            s.labels for f in self.families.values() for s in f.samples if s.name == sample_name
        ]


async def scrape(client) -> Scrape:
    resp = await client.get("/metrics")  # no Authorization: the route needs none
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return Scrape(await resp.text())


async def test_every_name_of_the_contract_is_exposed_with_its_labels(client):
    await client.get("/healthz")
    before = await scrape(client)
    for name, (kind, labels) in EXPECTED.items():
        assert name in before.families, name
        assert before.families[name].type == kind, name
        for sample in before.families[name].samples:
            if sample.name.endswith(("_bucket", "_created")):
                continue
            assert set(sample.labels) == labels, (sample.name, sample.labels)
    assert {tuple(sorted(s.items())) for s in before.labels_of("silverexport_slots")} >= {
        (("side", side), ("state", state))
        for side in ("export", "ingestion")
        for state in ("used", "free", "reserved")
    }


async def test_values_move_with_jobs_appends_and_requests(open_system, serve):
    gate = Gate()
    system = open_system(export_fn=gate, max_concurrent_exports=1)
    system.store.ingest("token_transfers", transfer_rows(40))
    client = await serve(system)
    start = await scrape(client)

    job = await create(client, CSV)
    await asyncio.to_thread(gate.entered.wait, 30)
    held = await scrape(client)
    assert held.value("silverexport_jobs", status="running") == 1
    assert held.value("silverexport_slots", side="export", state="used") == 1

    gate.opened.set()
    done = await wait_done(system, job["job_id"])
    await client.get(f"/v1/export/jobs/{job['job_id']}", headers=ALICE)
    await client.get(f"/v1/export/jobs/{'0' * 32}", headers=ALICE)
    await client.get("/no/such/route/" + job["job_id"])
    stream = await client.get(f"/v1/export/jobs/{job['job_id']}/stream", headers=ALICE)
    await SSEReader(stream).events()
    after = await scrape(client)

    labels = {"status": "completed", "dataset": "token_transfers", "format": "csv"}
    assert after.value("silverexport_jobs_finished_total", **labels) == 1
    assert (
        after.value("silverexport_export_rows_total", dataset="token_transfers", format="csv")
        == done.rows
        > 0
    )
    assert after.value("silverexport_export_seconds_count") == 1
    assert after.value("silverexport_jobs", status="completed") == 1
    assert after.value("silverexport_jobs", status="running") == 0
    assert after.value("silverexport_slots", side="export", state="used") == 0
    appends = after.value("silverexport_event_append_seconds_count")
    assert appends >= 2 and appends > start.value("silverexport_event_append_seconds_count")

    requests = "silverexport_http_requests_total"
    job_route = "/v1/export/jobs/{job_id}"
    assert after.value(requests, route=job_route, method="GET", status="200") == 1
    assert after.value(requests, route=job_route, method="GET", status="404") == 1
    assert after.value(requests, route="/v1/export/dataset", method="POST", status="202") == 1
    assert after.value(requests, route=UNMATCHED_ROUTE, method="GET", status="404") == 1
    stream_route = "/v1/export/jobs/{job_id}/stream"
    assert after.value(requests, route=stream_route, method="GET", status="200") == 1
    assert after.value("silverexport_http_request_seconds_count", route=job_route) == 2
    # Labels are route templates: no job id (nor any raw path) ever becomes a label value.
    assert job["job_id"] not in after.text


async def test_methods_clients_invent_share_one_label(client):
    assert (await client.request("PROPFIND", "/healthz")).status == 405
    after = await scrape(client)
    routes = after.labels_of("silverexport_http_requests_total")
    assert {"route": UNMATCHED_ROUTE, "method": "other", "status": "405"} in routes
    assert all(labels["method"] != "PROPFIND" for labels in routes)


async def test_each_system_counts_in_its_own_registry(open_system, serve, tmp_path):
    one = open_system(data_dir=tmp_path / "one")
    two = open_system(data_dir=tmp_path / "two")
    first, second = await serve(one), await serve(two)
    for _ in range(3):
        await first.get("/healthz")
    route = {"route": "/healthz", "method": "GET", "status": "200"}
    assert (await scrape(first)).value("silverexport_http_requests_total", **route) == 3
    assert (await scrape(second)).value("silverexport_http_requests_total", **route) == 0


async def test_metrics_off_removes_the_route(open_system, serve):
    system = open_system(metrics="off")
    client = await serve(system)
    resp = await client.get("/metrics")
    assert resp.status == 404
    assert "/metrics" not in openapi_document(system.settings)["paths"]
    assert (await client.get("/healthz")).status == 200
