"""The legacy synchronous wallet export, and that it swallows no other route."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from .conftest import ALICE, WALLET, error_of, transfer_rows, wallet_rows


def read_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode(), newline="")))


@pytest.mark.parametrize("wallet", [WALLET, WALLET.lower(), "0x" + WALLET[2:].upper()])
async def test_jsonl_by_default_matching_any_case(client, wallet):
    resp = await client.get(f"/v1/export/{wallet}", headers=ALICE)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/x-ndjson"
    rows = [orjson.loads(line) for line in (await resp.read()).splitlines()]
    assert len(rows) == wallet_rows(60)
    assert all(WALLET.lower() in (r["from_address"].lower(), r["to_address"].lower()) for r in rows)
    assert [r["block_time"] for r in rows] == sorted(r["block_time"] for r in rows)


async def test_csv(client):
    resp = await client.get(f"/v1/export/{WALLET}", params={"format": "csv"}, headers=ALICE)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert len(read_csv(await resp.read())) == wallet_rows(60)


async def test_an_unknown_wallet_is_an_empty_export(client):
    resp = await client.get("/v1/export/0x" + "9" * 40, params={"format": "csv"}, headers=ALICE)
    assert resp.status == 200 and (await resp.read()).startswith(b"id,target_id,")


async def test_at_most_max_records_rows(open_system, serve):
    system = open_system(max_records=7)
    system.store.ingest("token_transfers", transfer_rows(60))
    client = await serve(system)
    resp = await client.get(f"/v1/export/{WALLET}", headers=ALICE)
    assert len((await resp.read()).splitlines()) == 7


async def test_a_large_export_streams_whole(open_system, serve):
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(30_000))
    client = await serve(system)
    resp = await client.get(f"/v1/export/{WALLET}", headers=ALICE)
    assert "Content-Length" not in resp.headers  # streamed, chunked
    assert len((await resp.read()).splitlines()) == wallet_rows(30_000)


async def test_a_client_that_leaves_mid_stream_does_not_hang_the_server(open_system, serve):
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(30_000))
    client = await serve(system)
    for _ in range(6):  # more than the streaming threads: each one must have been freed
        resp = await client.get(f"/v1/export/{WALLET}", headers=ALICE)
        await resp.content.read(100)
        resp.close()
    resp = await client.get(f"/v1/export/{WALLET}", params={"format": "csv"}, headers=ALICE)
    assert len(read_csv(await resp.read())) == wallet_rows(30_000)


@pytest.mark.parametrize(
    "wallet", ["0x1234", "0x" + "g" * 40, "1x" + "a" * 40, "0x" + "a" * 41, "abc", "0X" + "a" * 40]
)
async def test_a_malformed_wallet_is_400(client, wallet):
    resp = await client.get(f"/v1/export/{wallet}", headers=ALICE)
    assert "wallet" in (await error_of(resp, 400))["message"]


@pytest.mark.parametrize(
    "query", ["format=xml", "format=", "format=csv&format=jsonl", "format=CSV"]
)
async def test_a_bad_format_is_400(client, query):
    resp = await client.get(f"/v1/export/{WALLET}?{query}", headers=ALICE)
    assert "format" in (await error_of(resp, 400))["message"]


async def test_jobs_and_dataset_are_not_wallets(client):
    resp = await client.get("/v1/export/jobs", headers=ALICE)
    assert resp.status == 200 and "jobs" in await resp.json()
    resp = await client.get("/v1/export/dataset", headers=ALICE)
    await error_of(resp, 405)
    assert resp.headers["Allow"] == "POST"


async def test_head_answers_without_a_body(client):
    resp = await client.head(f"/v1/export/{WALLET}", headers=ALICE)
    assert resp.status == 200 and await resp.read() == b""
    assert (await client.get("/healthz")).status == 200
