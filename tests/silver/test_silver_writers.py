"""Exports: filters, order, limits, formats, gzip, hashes, cancellation and the wallet export."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os

import pytest

from silverexport.errors import StorageError, ValidationError
from silverexport.model import ExportFormat
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import (
    ExportCancelled,
    Filters,
    export_to_file,
    iter_wallet_export,
    wallet_sql,
)
from tests.silver.conftest import is_pg

WALLET = "0x" + "AbCd" * 10


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.fixture
def spread(store: SilverStore, transfer):
    """12 transfers: targets t1/t2, networks eth/arb, times one minute apart, out of order."""
    rows = [
        transfer(
            id=100 - i,
            target_id=f"t{i % 2 + 1}",
            network="eth" if i % 3 else "arb",
            block_time=f"2024-01-01T00:{(i * 7) % 12:02d}:00Z",
        )
        for i in range(12)
    ]
    rows.append(transfer(id=1, block_time="2024-01-01T00:05:00Z"))  # ties on time: id decides
    store.ingest("token_transfers", rows)
    return store


def export(store, tmp_path, fmt="jsonl", **kw):
    kw.setdefault("limit", 1000)
    path = tmp_path / f"out.{fmt}"
    result = export_to_file(store, "token_transfers", fmt, path, **kw)
    return result, path


def test_rows_come_in_time_then_id_order(spread, tmp_path):
    result, path = export(spread, tmp_path)
    keys = [(r["block_time"], r["id"]) for r in jsonl(path)]
    assert keys == sorted(keys) and result.rows == 13 and not result.truncated


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(target_id="t1"), lambda r: r["target_id"] == "t1"),
        (Filters(network="arb"), lambda r: r["network"] == "arb"),
        (
            Filters(target_id="t2", network="eth"),
            lambda r: r["target_id"] == "t2" and r["network"] == "eth",
        ),
        (
            Filters(from_="2024-01-01T00:03:00.000Z", to="2024-01-01T00:07:00.000Z"),
            lambda r: "2024-01-01T00:03:00.000Z" <= r["block_time"] < "2024-01-01T00:07:00.000Z",
        ),
        (Filters(target_id="nobody"), lambda r: False),
    ],
)
def test_filters(spread, tmp_path, filters, expected):
    everything = jsonl(export(spread, tmp_path)[1])
    result, path = export(spread, tmp_path, filters=filters)
    assert jsonl(path) == [r for r in everything if expected(r)]
    assert result.rows == len(jsonl(path))


def test_from_is_inclusive_and_to_exclusive(spread, tmp_path):
    at = "2024-01-01T00:05:00.000Z"
    _, path = export(spread, tmp_path, filters=Filters(from_=at, to="2024-01-01T00:05:00.001Z"))
    assert {r["block_time"] for r in jsonl(path)} == {at}
    _, path = export(spread, tmp_path, filters=Filters(to=at))
    assert all(r["block_time"] < at for r in jsonl(path))


@pytest.mark.parametrize(("limit", "truncated"), [(5, True), (12, True), (13, False), (99, False)])
def test_limit_and_truncated(spread, tmp_path, limit, truncated):
    full = jsonl(export(spread, tmp_path)[1])
    result, path = export(spread, tmp_path, fmt="csv", limit=limit, batch_size=4)
    assert [int(r["id"]) for r in csv_rows(path.read_bytes())] == [r["id"] for r in full[:limit]]
    assert (result.rows, result.truncated) == (min(limit, 13), truncated)


def test_bytes_and_sha256_are_the_files(spread, tmp_path):
    for fmt in ("csv", "jsonl"):
        result, path = export(spread, tmp_path, fmt=fmt)
        data = path.read_bytes()
        assert result.bytes == len(data) == os.path.getsize(path)
        assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_gzip_hashes_the_compressed_file(spread, tmp_path):
    plain_result, plain = export(spread, tmp_path, fmt="csv")
    expected = plain.read_bytes()
    result, path = export(spread, tmp_path, fmt="csv", compression="gzip")
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b" and gzip.decompress(data) == expected
    assert result.bytes == len(data) and result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.rows == plain_result.rows
    assert export(spread, tmp_path, fmt="csv", compression="gzip")[0] == result  # deterministic


def test_csv_has_header_crlf_and_nulls_as_empty(store, transfer, tmp_path):
    store.ingest("token_transfers", [transfer(token_symbol=None, direction=None)])
    _, path = export(store, tmp_path, fmt="csv")
    data = path.read_bytes()
    header, row, end = data.split(b"\r\n")
    assert header.decode() == ",".join(store_columns())
    assert end == b"" and row.endswith(b",1.5,")  # amount, then direction null


def test_csv_tells_null_from_the_empty_string(store, transfer, tmp_path):
    """SPEC §3, as PostgreSQL's COPY CSV: null is an empty unquoted field, "" is quoted."""
    odd = "ab" if is_pg(store) else "a\x00b"  # NUL takes SQLite's SQL path; PostgreSQL has none
    store.ingest(
        "token_transfers",
        [
            transfer(id=1, token_symbol=None, tx_hash="", from_address=""),
            transfer(id=2, token_symbol="", tx_hash="h", to_address=odd),
        ],
    )
    _, path = export(store, tmp_path, fmt="csv")
    lines = path.read_bytes().split(b"\r\n")
    assert lines[1] == (
        b'1,t1,ethereum,100,2024-01-01T00:00:00.000Z,"",0,0xtoken,,"",0x' + b"b" * 40 + b",1.5,in"
    )
    assert lines[2].split(b",")[8] == b'""'  # token_symbol "" (not null)
    back = csv_rows(path.read_bytes())
    assert [(r["token_symbol"], r["tx_hash"], r["from_address"]) for r in back] == [
        ("", "", ""),
        ("", "h", "0x" + "a" * 40),
    ]
    _, path = export(store, tmp_path, fmt="jsonl")
    assert [(r["token_symbol"], r["tx_hash"]) for r in jsonl(path)] == [(None, ""), ("", "h")]


def store_columns():
    from silverexport.silver.catalog import get_dataset

    return get_dataset("token_transfers").column_names


def test_booleans_and_decoded_fields(store, fill, event, tmp_path):
    store.ingest("hl_fills", [fill(crossed=True), fill(crossed=False)])
    nested = {"to": "0x1", "v": ["1", 2, 2.5, None, True], "x": {"y": 'a "q", b'}, "e": {}}
    store.ingest("decoded_events", [event(decoded_fields=nested), event(decoded_fields={})])
    out = tmp_path / "f.jsonl"
    export_to_file(store, "hl_fills", "jsonl", out, limit=10)
    assert [r["crossed"] for r in jsonl(out)] == [True, False]
    export_to_file(store, "hl_fills", "csv", out, limit=10)
    assert [r["crossed"] for r in csv_rows(out.read_bytes())] == ["true", "false"]
    export_to_file(store, "decoded_events", "jsonl", out, limit=10)
    assert [r["decoded_fields"] for r in jsonl(out)] == [nested, {}]
    export_to_file(store, "decoded_events", "csv", out, limit=10)
    fields = [r["decoded_fields"] for r in csv_rows(out.read_bytes())]
    assert fields == [json.dumps(nested, separators=(",", ":")), "{}"]


def test_should_stop_cancels_between_batches(spread, tmp_path):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(ExportCancelled):
        export(spread, tmp_path, batch_size=3, should_stop=stop)
    assert len(calls) == 3


def test_progress_is_reported_after_each_batch(spread, tmp_path):
    seen: list[int] = []
    export(spread, tmp_path, batch_size=5, on_progress=seen.append)
    assert seen == [5, 10, 13]


def test_a_missing_store_is_a_storage_error(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        export_to_file(tmp_path / "none.db", "token_transfers", "csv", tmp_path / "o", limit=1)
    assert not (tmp_path / "none.db").exists()


def test_an_unwritable_target_is_a_storage_error(spread, tmp_path):
    with pytest.raises(StorageError, match="could not write the export file") as e:
        export(spread, tmp_path / "no" / "such" / "dir")
    assert isinstance(e.value.__cause__, OSError)


def test_a_full_disk_is_a_storage_error(spread, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    with pytest.raises(StorageError, match="No space left"):
        export_to_file(spread, "token_transfers", "jsonl", "/dev/full", limit=100)


def test_export_sees_one_snapshot_while_ingest_continues(spread, transfer, tmp_path):
    seen: list[int] = []

    def ingest_meanwhile(rows: int) -> None:
        seen.append(rows)
        spread.ingest("token_transfers", [transfer(block_time="2030-01-01T00:00:00Z")])

    result, _ = export(spread, tmp_path, batch_size=2, on_progress=ingest_meanwhile)
    assert result.rows == 13 and spread.count("token_transfers") == 13 + len(seen)


# -- the legacy wallet export --------------------------------------------------------------


@pytest.fixture
def wallets(store, transfer):
    other = "0x" + "1" * 40
    rows = [
        transfer(from_address=WALLET, block_time="2024-01-03T00:00:00Z"),
        transfer(to_address=WALLET.upper().replace("0X", "0x"), block_time="2024-01-01T00:00:00Z"),
        transfer(from_address=WALLET.lower(), to_address=WALLET, block_time="2024-01-02T00:00:00Z"),
        transfer(from_address=other, to_address=other),
    ]
    store.ingest("token_transfers", rows)
    return store


def test_wallet_export_matches_either_side_case_insensitively(wallets):
    data = b"".join(iter_wallet_export(wallets, WALLET.lower(), "jsonl", max_records=10))
    rows = [json.loads(line) for line in data.splitlines()]
    assert [r["id"] for r in rows] == [2, 3, 1]


def test_wallet_export_is_bounded_and_csv(wallets):
    data = b"".join(iter_wallet_export(wallets, WALLET, ExportFormat.CSV, max_records=2))
    assert [r["id"] for r in csv_rows(data)] == ["2", "3"]


def test_wallet_export_uses_the_address_indexes(sqlite_store, transfer):
    wallets = sqlite_store
    plan = wallets.db.execute(
        "EXPLAIN QUERY PLAN " + wallet_sql(ExportFormat.JSONL), {"wallet": WALLET, "n": 5}
    ).fetchall()
    details = [row[-1] for row in plan]
    assert any("USING INDEX token_transfers_by_lower_from_address" in d for d in details)
    assert any("USING INDEX token_transfers_by_lower_to_address" in d for d in details)
    assert not any(d.startswith("SCAN token_transfers") for d in details)


def test_wallet_must_look_like_one(wallets):
    with pytest.raises(ValidationError):
        next(iter_wallet_export(wallets, "0x123", "csv", max_records=1))
