"""The service with its Silver store on PostgreSQL (SILVEREXPORT_SILVER_URL): export jobs end
to end over HTTP, in every format, with filters, limits, cancellation and the wallet route;
the files are the bytes a SQLite-backed system makes of the same rows."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from silverexport.silver.postgres_store import PostgresSilverStore
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import export_to_file

from .conftest import ALICE, WALLET, create, transfer_rows, wait_done, wallet_rows

# Each test chooses its systems' Silver backends itself (one SQLite, one PostgreSQL).
pytestmark = pytest.mark.sqlite_silver

ROWS = 60
BODIES = [
    {"dataset": "token_transfers", "format": "csv"},
    {"dataset": "token_transfers", "format": "jsonl"},
    {"dataset": "token_transfers", "format": "parquet"},
    {"dataset": "token_transfers", "format": "csv", "compression": "gzip"},
    {"dataset": "token_transfers", "format": "jsonl", "network": "ethereum", "limit": 7},
    {
        "dataset": "token_transfers",
        "format": "csv",
        "from": "2023-11-14T22:13:30Z",
        "to": "2023-11-14T22:13:50Z",
    },
]


@pytest.fixture
def pg_system(open_system, postgres_url, tmp_path):
    system = open_system(data_dir=tmp_path / "pg", silver_url=postgres_url)
    assert isinstance(system.store, PostgresSilverStore)
    assert system.ingest("token_transfers", transfer_rows(ROWS)) == ROWS
    return system


@pytest.fixture
def lite_system(open_system, tmp_path):
    system = open_system(data_dir=tmp_path / "lite")
    assert isinstance(system.store, SilverStore)
    system.ingest("token_transfers", transfer_rows(ROWS))
    return system


async def run_job(client, system, body: dict[str, Any]) -> tuple[Any, bytes]:
    job = await create(client, body)
    view = await wait_done(system, job["job_id"])
    assert view.status.value == "completed", view.error
    resp = await client.get(view.download_url, headers=ALICE)
    assert resp.status == 200
    return view, await resp.read()


@pytest.mark.parametrize("body", BODIES, ids=lambda b: "-".join(map(str, b.values())))
async def test_jobs_on_postgres_give_the_files_of_sqlite(serve, pg_system, lite_system, body):
    pg_view, pg_file = await run_job(await serve(pg_system), pg_system, body)
    lite_view, lite_file = await run_job(await serve(lite_system), lite_system, body)
    assert pg_file == lite_file and pg_view.sha256 == lite_view.sha256
    assert (pg_view.rows, pg_view.bytes, pg_view.truncated) == (
        lite_view.rows,
        lite_view.bytes,
        lite_view.truncated,
    )
    assert pg_view.rows > 0
    if body.get("limit"):
        assert pg_view.rows == body["limit"] and pg_view.truncated


async def test_max_records_truncates_on_postgres(open_system, postgres_url, tmp_path, serve):
    system = open_system(data_dir=tmp_path / "pg", silver_url=postgres_url, max_records=5)
    system.ingest("token_transfers", transfer_rows(12))
    view, body = await run_job(await serve(system), system, BODIES[0])
    assert view.rows == 5 and view.truncated and body.count(b"\r\n") == 6


async def test_the_wallet_route_reads_postgres(serve, pg_system, lite_system):
    pg_client, lite_client = await serve(pg_system), await serve(lite_system)
    for query in ("", "?format=csv"):
        pg = await pg_client.get(f"/v1/export/{WALLET.lower()}{query}", headers=ALICE)
        lite = await lite_client.get(f"/v1/export/{WALLET.lower()}{query}", headers=ALICE)
        assert pg.status == lite.status == 200
        data = await pg.read()
        assert data == await lite.read()
    assert data.count(b"\r\n") == 1 + wallet_rows(ROWS)


class Holding:
    """An export_fn that stops after the first batch until the job is cancelled (or a
    deadline passes), so a test can cancel an export that is really reading PostgreSQL."""

    def __init__(self) -> None:
        self.progressed = threading.Event()

    def __call__(self, *args: Any, should_stop: Callable[[], bool], **kwargs: Any) -> Any:
        def hold(rows: int) -> None:
            self.progressed.set()
            deadline = time.monotonic() + 30
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(0.01)

        return export_to_file(
            *args, should_stop=should_stop, **{**kwargs, "batch_size": 5, "on_progress": hold}
        )


async def test_cancelling_a_running_export_on_postgres(open_system, postgres_url, tmp_path, serve):
    holding = Holding()
    system = open_system(data_dir=tmp_path / "pg", silver_url=postgres_url, export_fn=holding)
    system.ingest("token_transfers", transfer_rows(ROWS))
    client = await serve(system)
    job = await create(client, BODIES[1])
    assert await asyncio.to_thread(holding.progressed.wait, 30)
    resp = await client.delete(f"/v1/export/jobs/{job['job_id']}", headers=ALICE)
    assert resp.status == 200, await resp.text()
    view = await wait_done(system, job["job_id"])
    assert view.status.value == "cancelled" and view.download_url is None


def test_ingest_takes_an_ingestion_slot_on_postgres(pg_system):
    seen: list[int] = []

    def rows():
        for row in transfer_rows(3):
            seen.append(pg_system.slots.usage().ingestion)
            yield row

    assert pg_system.ingest("token_transfers", rows()) == 3
    assert seen == [1, 1, 1] and pg_system.slots.usage().ingestion == 0
    assert pg_system.store.count("token_transfers") == ROWS + 3
