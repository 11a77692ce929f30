"""Parquet through every way in: HTTP (body, download, errors, OpenAPI), the Python API and
the `silverexport export` command, for every dataset; cancellation and crash recovery are the
exporter's own (tests/actors run a Parquet job through a SIGKILL too)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from silverexport import ExportRequest, ExportSystem, JobStatus
from silverexport.errors import ValidationError
from silverexport.http import make_app
from silverexport.silver.catalog import DATASETS
from silverexport.silver.demo import rows_for
from silverexport.silver.writers import export_to_file
from tests.stored import stored_bytes

from .readback import assert_reads_back

# These tests read the rows back from silver.db itself: the SQLite Silver file.
pytestmark = pytest.mark.sqlite_silver

KEY = {"Authorization": "Bearer k1"}
WAIT = 60.0
PARQUET = "application/vnd.apache.parquet"


def seed(system: ExportSystem, rows: int = 40) -> None:
    for name in DATASETS:
        system.store.ingest(name, rows_for(name, rows))


@pytest.fixture
def system(open_system) -> ExportSystem:
    system = open_system(api_keys="alice:k1")
    seed(system)
    return system


@pytest.fixture
async def client(aiohttp_client, system):
    return await aiohttp_client(make_app(system))


async def wait_done(system: ExportSystem, job_id: str):
    return await asyncio.to_thread(system.wait, job_id, WAIT)


@pytest.mark.parametrize("name", list(DATASETS))
async def test_http_export_and_download_of_every_dataset(client, system, tmp_path, name):
    resp = await client.post(
        "/v1/export/dataset", json={"dataset": name, "format": "parquet"}, headers=KEY
    )
    assert resp.status == 202, await resp.text()
    job = await resp.json()
    assert (job["format"], job["compression"]) == ("parquet", None)
    view = await wait_done(system, job["job_id"])
    assert view.status is JobStatus.COMPLETED and view.rows == 40

    resp = await client.get(view.download_url, headers=KEY)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == PARQUET
    assert resp.headers["ETag"] == f'"{view.sha256}"'
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="{name}-{view.job_id}.parquet"'
    )
    body = await resp.read()
    assert len(body) == view.bytes and body[:4] == body[-4:] == b"PAR1"
    (tmp_path / "got.parquet").write_bytes(body)
    assert_reads_back(tmp_path / "got.parquet", system.settings.silver_path, DATASETS[name])


@pytest.mark.parametrize("compression", ["gzip", "zstd", ""])
async def test_compression_with_parquet_is_a_400_naming_the_field(client, compression):
    body = {"dataset": "hl_fills", "format": "parquet", "compression": compression}
    resp = await client.post("/v1/export/dataset", json=body, headers=KEY)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert '"compression"' in error["message"]
    # null is the same as absent
    body["compression"] = None
    resp = await client.post("/v1/export/dataset", json=body, headers=KEY)
    assert resp.status == 202, await resp.text()


async def test_the_wallet_route_keeps_to_jsonl_and_csv(client):
    resp = await client.get(f"/v1/export/0x{'ab' * 20}?format=parquet", headers=KEY)
    assert resp.status == 400
    assert '"format"' in (await resp.json())["error"]["message"]


async def test_openapi_describes_parquet(client):
    doc = await (await client.get("/v1/openapi.json")).json()
    request = doc["components"]["schemas"]["ExportRequest"]
    assert "parquet" in request["properties"]["format"]["enum"]
    assert "parquet" in doc["components"]["schemas"]["Job"]["properties"]["format"]["enum"]
    # A parquet body with a compression matches none of the anyOf branches.
    branches = request["anyOf"]
    assert all(
        "parquet" not in b["properties"].get("format", {}).get("enum", ["parquet"])
        or b["properties"].get("compression") == {"type": "null"}
        for b in branches
    )
    download = doc["paths"]["/v1/export/jobs/{job_id}/download"]["get"]["responses"]["200"]
    assert PARQUET in download["content"]


@pytest.mark.parametrize("name", list(DATASETS))
def test_python_api_export_of_every_dataset(system, name, tmp_path):
    job = system.submit(ExportRequest(dataset=name, format="parquet", limit=25))
    done = system.wait(job.job_id, timeout=WAIT)
    assert done.status is JobStatus.COMPLETED
    assert (done.rows, done.truncated) == (25, True)
    assert done.file_name.endswith(".parquet")
    path = tmp_path / done.file_name  # a copy out of the store, for the readers that want a path
    path.write_bytes(stored_bytes(system, done))
    assert_reads_back(path, system.settings.silver_path, DATASETS[name], limit=25)


def test_python_api_refuses_compression_with_parquet(system):
    with pytest.raises(ValidationError, match='"compression"') as caught:
        system.submit(ExportRequest(dataset="positions", format="parquet", compression="gzip"))
    assert caught.value.field == "compression"


def test_the_same_rows_give_the_same_file_in_two_jobs(system):
    views = []
    for _ in range(2):
        job = system.submit(ExportRequest(dataset="hl_fills", format="parquet"))
        views.append(system.wait(job.job_id, timeout=WAIT))
    assert views[0].job_id != views[1].job_id
    assert views[0].sha256 == views[1].sha256
    assert stored_bytes(system, views[0]) == stored_bytes(system, views[1])


def test_cancelling_a_running_parquet_job_leaves_no_file(open_system):
    entered, opened = threading.Event(), threading.Event()

    def gated(*args: Any, should_stop, **kwargs: Any):
        entered.set()
        while not opened.wait(0.01) and not should_stop():
            pass
        return export_to_file(*args, should_stop=should_stop, **kwargs)

    system = open_system(export_fn=gated)
    seed(system, 10)
    job = system.submit(ExportRequest(dataset="hl_funding", format="parquet"))
    assert entered.wait(WAIT)
    system.cancel(job.job_id)
    view = system.wait(job.job_id, timeout=WAIT)
    assert view.status is JobStatus.CANCELLED
    assert system.storage.list(job.job_id) == system.storage.list_partials(job.job_id) == []


def cli(data_dir: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "silverexport", *argv, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_exports_every_dataset_to_parquet(tmp_path):
    data_dir = tmp_path / "data"
    with ExportSystem.open(data_dir) as system:
        seed(system, 30)
    for name in DATASETS:
        out = tmp_path / f"{name}.parquet"
        done = cli(data_dir, "export", name, "--format", "parquet", "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert "completed: 30 rows" in done.stderr
        assert_reads_back(out, data_dir / "silver.db", DATASETS[name])


def test_cli_refuses_gzip_with_parquet(tmp_path):
    data_dir = tmp_path / "data"
    with ExportSystem.open(data_dir):
        pass
    done = cli(data_dir, "export", "hl_fills", "--format", "parquet", "--gzip")
    assert done.returncode == 2
    assert '"compression"' in done.stderr and "Traceback" not in done.stderr
