"""The Parquet writer on real SQLite stores: types per SPEC §3, exact values in pyarrow, DuckDB
and Polars, deterministic bytes, truncation, cancellation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from silverexport.errors import StorageError
from silverexport.silver.catalog import DATASETS
from silverexport.silver.demo import rows_for
from silverexport.silver.parquet import ROW_GROUP_ROWS
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import ExportCancelled, Filters, export_to_file

from .readback import assert_reads_back

DS = DATASETS["native_balance_deltas"]  # two decimal columns, one of them nullable


@pytest.fixture
def store(tmp_path: Path):
    with SilverStore(tmp_path / "silver.db") as s:
        yield s


def delta(i: int, value: str, after: str | None = "1") -> dict:
    return {
        "target_id": "t1",
        "network": "ethereum",
        "block_number": i,
        "block_time": 1_700_000_000_000 + i,
        "tx_hash": f"0x{i:x}",
        "address": "0xa",
        "delta": value,
        "balance_after": after,
    }


def export(store: SilverStore, name: str, out: Path, **kw):
    kw.setdefault("limit", 1000)
    return export_to_file(store.path, name, "parquet", out, **kw)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_reads_back_exactly_in_three_readers(store, tmp_path, name):
    store.ingest(name, rows_for(name, 300))
    result = export(store, name, tmp_path / "out.parquet")
    assert result.rows == 300 and not result.truncated
    data = (tmp_path / "out.parquet").read_bytes()
    assert result.bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert_reads_back(tmp_path / "out.parquet", store.path, DATASETS[name])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1" * 38], pa.decimal128(38, 0)),  # exactly 38 digits
        (["-" + "9" * 38], pa.decimal128(38, 0)),
        (["1" * 39], pa.string()),  # 39 digits: no reader-safe decimal holds it
        (["0." + "0" * 37 + "1"], pa.decimal128(38, 38)),  # very small, 38 digits of scale
        (["0." + "0" * 38 + "1"], pa.string()),  # scale 39
        (["12", "-7", "0"], pa.decimal128(2, 0)),  # scale 0
        (["-0", "0"], pa.decimal128(1, 0)),
        (["0.001", "-0.5"], pa.decimal128(3, 3)),  # "0" before the point is no digit
        (["123.4", "0.00001"], pa.decimal128(8, 5)),  # widest integer part + largest scale
        (["1" * 20 + ".5", "0." + "1" * 18], pa.decimal128(38, 18)),
    ],
)
def test_the_smallest_decimal_that_holds_every_value(store, tmp_path, values, expected):
    store.ingest(DS.name, [delta(i, v) for i, v in enumerate(values)])
    export(store, DS.name, tmp_path / "d.parquet")
    schema = pq.read_schema(tmp_path / "d.parquet")
    assert schema.field("delta").type == expected
    assert schema.field("balance_after").type == pa.decimal128(1, 0)
    assert_reads_back(tmp_path / "d.parquet", store.path, DS)


def test_a_column_of_nulls_and_an_empty_export_keep_their_types(store, tmp_path):
    store.ingest(DS.name, [delta(1, "5.25", None), delta(2, "-1", None)])
    export(store, DS.name, tmp_path / "n.parquet")
    table = pq.read_table(tmp_path / "n.parquet")
    assert table.schema.field("balance_after").type == pa.decimal128(1, 0)
    assert table.column("balance_after").null_count == 2
    assert_reads_back(tmp_path / "n.parquet", store.path, DS)

    result = export(store, DS.name, tmp_path / "e.parquet", filters=Filters(target_id="none"))
    assert result.rows == 0
    empty = pq.read_table(tmp_path / "e.parquet")
    assert empty.num_rows == 0 and empty.schema.names == list(DS.column_names)


def test_text_with_nul_quotes_and_any_unicode_is_kept(store, tmp_path):
    ds = DATASETS["token_transfers"]
    texts = ["a\x00b", 'q"uo,te\r\n', "\u2028\ufeff😀", "", "\x00"]
    rows = [
        {
            "target_id": "t1",
            "network": "n",
            "block_number": i,
            "block_time": f"2024-01-01T00:00:0{i}+02:00",
            "tx_hash": text,
            "log_index": 0,
            "token_address": "0x",
            "token_symbol": None if i % 2 else text,
            "from_address": "f",
            "to_address": "t",
            "amount": "1",
        }
        for i, text in enumerate(texts)
    ]
    store.ingest(ds.name, rows)
    export(store, ds.name, tmp_path / "t.parquet")
    stored = assert_reads_back(tmp_path / "t.parquet", store.path, ds)
    assert [r["tx_hash"] for r in stored] == texts


def test_decoded_fields_are_the_stored_compact_json_text(store, tmp_path):
    ds = DATASETS["decoded_events"]
    store.ingest(ds.name, rows_for(ds.name, 20))
    export(store, ds.name, tmp_path / "e.parquet")
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.schema.field("decoded_fields").type == pa.string()
    stored = [r.as_py() for r in table.column("decoded_fields")]
    direct = [
        r[0]
        for r in store.db.execute(
            "SELECT decoded_fields FROM decoded_events ORDER BY block_time, id"
        ).fetchall()
    ]
    assert stored == direct


def test_same_rows_same_bytes_whatever_the_batch_size(store, tmp_path):
    store.ingest("token_transfers", rows_for("token_transfers", 300))
    hashes = {
        export(store, "token_transfers", tmp_path / f"{i}.parquet", batch_size=batch).sha256
        for i, batch in enumerate((1, 7, 5000))
    }
    assert len(hashes) == 1
    # Across row groups too: a group is encoded from one chunk, however the rows arrived.
    n = ROW_GROUP_ROWS + 10
    store.ingest(DS.name, [delta(i, f"{i}.{i % 7}", str(i)) for i in range(n)])
    hashes = {
        export(store, DS.name, tmp_path / "g.parquet", limit=n, batch_size=batch).sha256
        for batch in (997, 5000, n)
    }
    assert len(hashes) == 1
    metadata = pq.read_metadata(tmp_path / "0.parquet")
    assert metadata.created_by.startswith("parquet-cpp-arrow version ")
    assert b"ARROW:schema" in (metadata.metadata or {})  # no other key: no time, no id
    assert set(metadata.metadata) == {b"ARROW:schema"}


def test_row_groups_are_bounded(store, tmp_path):
    n = ROW_GROUP_ROWS + 10
    store.ingest(DS.name, [delta(i, str(i)) for i in range(n)])
    result = export(store, DS.name, tmp_path / "g.parquet", limit=n, batch_size=50_000)
    assert result.rows == n
    metadata = pq.read_metadata(tmp_path / "g.parquet")
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [ROW_GROUP_ROWS, 10]
    assert metadata.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.parametrize("batch_size", [1, 3, 5000])
def test_limit_truncates_and_types_only_the_rows_in_the_file(store, tmp_path, batch_size):
    # The wide value comes after the limit: it must not widen (or stringify) the column.
    store.ingest(DS.name, [delta(1, "1.5"), delta(2, "-22"), delta(3, "9" * 45)])
    result = export(store, DS.name, tmp_path / "l.parquet", limit=2, batch_size=batch_size)
    assert (result.rows, result.truncated) == (2, True)
    assert pq.read_schema(tmp_path / "l.parquet").field("delta").type == pa.decimal128(3, 1)
    assert_reads_back(tmp_path / "l.parquet", store.path, DS, limit=2)

    exact = export(store, DS.name, tmp_path / "x.parquet", limit=3, batch_size=batch_size)
    assert (exact.rows, exact.truncated) == (3, False)
    assert pq.read_schema(tmp_path / "x.parquet").field("delta").type == pa.string()


def test_filters_select_the_rows(store, tmp_path):
    rows = [delta(i, str(i)) | {"target_id": f"t{i % 2}"} for i in range(10)]
    store.ingest(DS.name, rows)
    filters = Filters(target_id="t1", from_="2023-11-14T22:13:20.002Z")
    result = export(store, DS.name, tmp_path / "f.parquet", filters=filters)
    ids = pq.read_table(tmp_path / "f.parquet").column("block_number").to_pylist()
    assert result.rows == len(ids) and ids == [3, 5, 7, 9]


def test_cancellation_stops_between_batches(store, tmp_path):
    store.ingest(DS.name, [delta(i, "1") for i in range(50)])
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(ExportCancelled):
        export(store, DS.name, tmp_path / "c.parquet", batch_size=5, should_stop=stop)
    progress = []
    export(store, DS.name, tmp_path / "p.parquet", batch_size=20, on_progress=progress.append)
    assert progress == [20, 40, 50]


def test_a_missing_store_is_a_storage_error(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        export_to_file(tmp_path / "none.db", DS.name, "parquet", tmp_path / "o", limit=1)


def test_an_unwritable_target_is_a_storage_error(store, tmp_path):
    store.ingest(DS.name, [delta(1, "1")])
    with pytest.raises(StorageError, match="could not write"):
        export(store, DS.name, Path("/dev/full"))
