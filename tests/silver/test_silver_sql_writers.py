"""Rows that other programs write with plain SQL (SPEC §2) export exactly, as if ingested."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest

from silverexport.silver.catalog import ColumnKind, get_dataset
from silverexport.silver.port import SilverBackend
from silverexport.silver.rendering import ESCAPE_MASK
from silverexport.silver.store import SilverStore, schema_sql
from silverexport.silver.writers import export_to_file
from tests.silver.conftest import is_pg

# Text that CSV must quote, JSON must escape, or both; and text that needs neither.
TRICKY = [
    'a,b"c',
    "line one\nline two",
    "cr\r\nlf",
    'é "quoted" \\ back\tslash \x01 \u2028 \U0001f600',
    "",
    "plain",
]


def raw(store: SilverBackend) -> Any:
    """A connection of a program that knows nothing of silverexport, on either backend
    (`?` placeholders on both)."""
    if is_pg(store):
        return _Psql(psycopg.connect(store.url))
    return sqlite3.connect(store.path)


class _Psql:
    """psycopg with sqlite3's `?` placeholders and `with conn:` (commit, then stay open)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def execute(self, statement: str, params: Any = None) -> Any:
        return self.conn.execute(statement.replace("?", "%s"), params)

    def __enter__(self) -> _Psql:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.conn.commit()
        else:
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def exported(store: SilverStore, dataset: str, tmp_path: Path) -> tuple[list[dict], list[dict]]:
    """Both exports of `dataset`, read back with the stdlib: (JSONL rows, CSV rows)."""
    out = {}
    tmp_path.mkdir(exist_ok=True)
    for fmt in ("jsonl", "csv"):
        export_to_file(store, dataset, fmt, tmp_path / f"out.{fmt}", limit=1000)
        out[fmt] = (tmp_path / f"out.{fmt}").read_bytes()
    lines = out["jsonl"].decode().split("\n")
    assert lines[-1] == ""  # one \n after every row
    rows = [json.loads(line) for line in lines[:-1]]
    back = list(csv.DictReader(io.StringIO(out["csv"].decode(), newline="")))
    return rows, back


def as_csv(value: object) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize("text", TRICKY)
def test_an_update_with_sql_is_exported_exactly(store, transfer, tmp_path, text):
    store.ingest("token_transfers", [transfer(id=1), transfer(id=2)])
    with raw(store) as conn:
        conn.execute("UPDATE token_transfers SET token_symbol = ? WHERE id = 1", [text])
        conn.execute("UPDATE token_transfers SET tx_hash = ?, to_address = ?", [text, text[::-1]])
    conn.close()
    rows, back = exported(store, "token_transfers", tmp_path)
    assert [r["token_symbol"] for r in rows] == [text, "USDC"]
    assert [r["tx_hash"] for r in rows] == [text, text]
    assert [r["to_address"] for r in rows] == [text[::-1]] * 2
    assert [[r[k] for k in ("token_symbol", "tx_hash", "to_address")] for r in back] == [
        [text, text, text[::-1]],
        ["USDC", text, text[::-1]],
    ]
    assert [r["amount"] for r in back] == ["1.5", "1.5"]  # no column shifted


def test_every_text_column_updated_with_sql(store, transfer, tmp_path):
    store.ingest("token_transfers", [transfer(id=1)])
    ds = get_dataset("token_transfers")
    texts = [c.name for c in ds.columns if c.kind is ColumnKind.TEXT]
    with raw(store) as conn:
        for i, name in enumerate(texts):
            conn.execute(f"UPDATE token_transfers SET {name} = ?", [TRICKY[i % 4] + name])
    conn.close()
    rows, back = exported(store, "token_transfers", tmp_path)
    for i, name in enumerate(texts):
        assert rows[0][name] == back[0][name] == TRICKY[i % 4] + name


def test_a_row_inserted_with_sql_exports_as_if_ingested(tmp_path, transfer):
    values = transfer(
        id=7,
        target_id='t "1", \u00e9',
        tx_hash="0x\n1",
        token_symbol=None,
        from_address="",
        to_address="a\\b",
        direction=None,
        block_time="2024-01-01T00:00:00.000Z",
    )
    with SilverStore(tmp_path / "ingested.db") as ingested:
        ingested.ingest("token_transfers", [values])
        want = exported(ingested, "token_transfers", tmp_path / "a")
        want_bytes = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    with SilverStore(tmp_path / "sql.db") as by_sql:
        with raw(by_sql) as conn:  # no escape mask given: none can be
            names = ", ".join(values)
            marks = ", ".join("?" * len(values))
            conn.execute(
                f"INSERT INTO token_transfers ({names}) VALUES ({marks})", list(values.values())
            )
        conn.close()
        assert exported(by_sql, "token_transfers", tmp_path / "b") == want
    got_bytes = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    assert got_bytes == want_bytes
    rows, back = want
    assert rows == [{k: v for k, v in values.items()}]
    assert back == [{k: as_csv(v) for k, v in values.items()}]


def test_a_row_deleted_with_sql_is_gone(store, transfer, tmp_path):
    store.ingest("token_transfers", [transfer(id=1), transfer(id=2, token_symbol='x,"y')])
    with raw(store) as conn:
        conn.execute("DELETE FROM token_transfers WHERE id = 1")
    conn.close()
    rows, back = exported(store, "token_transfers", tmp_path)
    assert [r["id"] for r in rows] == [2] and back[0]["token_symbol"] == 'x,"y'


def test_decoded_fields_written_with_sql_are_exported_compact(store, event, tmp_path):
    store.ingest("decoded_events", [event(id=1)])
    written = '{"a" : 1E+2,\n "b": [-0, 0.10, 1e400], "c": "x,\\"y\\""}'
    with raw(store) as conn:
        conn.execute("UPDATE decoded_events SET decoded_fields = ?", [written])
    conn.close()
    compact = '{"a":1E+2,"b":[-0,0.10,1e400],"c":"x,\\"y\\""}'
    export_to_file(store, "decoded_events", "jsonl", tmp_path / "o.jsonl", limit=10)
    line = (tmp_path / "o.jsonl").read_text("utf-8")
    assert ',"decoded_fields":' + compact + "}\n" in line
    json.loads(line)
    _, back = exported(store, "decoded_events", tmp_path)
    assert back[0]["decoded_fields"] == compact
    export_to_file(store, "decoded_events", "parquet", tmp_path / "o.parquet", limit=10)
    assert pq.read_table(tmp_path / "o.parquet")["decoded_fields"].to_pylist() == [compact]


def test_the_escape_mask_is_computed_by_the_database_and_cannot_be_written(store, transfer):
    store.ingest("token_transfers", [transfer(id=1)])
    refused = (psycopg.errors.GeneratedAlways, "can only be updated to DEFAULT")
    if not is_pg(store):
        refused = (sqlite3.OperationalError, "generated column")
    with raw(store) as conn, pytest.raises(refused[0], match=refused[1]):
        conn.execute(f"UPDATE token_transfers SET {ESCAPE_MASK} = 0")
    conn.close()


def test_a_store_with_the_legacy_hint_is_upgraded_on_open(tmp_path, transfer):
    """Stores made before the mask was generated carry `_csv_quote`, written at ingest; a
    program then changed a row with SQL, so the hint says "nothing to quote" wrongly."""
    path = tmp_path / "silver.db"
    ds = get_dataset("token_transfers")
    defs = [f"{c.name} {c.kind.sql_type}" for c in ds.columns]
    defs[0] += " PRIMARY KEY"
    with sqlite3.connect(path) as conn:
        conn.execute(
            f"CREATE TABLE token_transfers ({', '.join(defs)}, "
            "_csv_quote INTEGER NOT NULL DEFAULT -1) STRICT"
        )
        for stmt in schema_sql(ds)[1:]:
            conn.execute(stmt)
        row = transfer(id=1, block_time="2024-01-01T00:00:00.000Z", token_symbol='a,b"c')
        names = ", ".join(row)
        conn.execute(
            f"INSERT INTO token_transfers ({names}, _csv_quote) VALUES "
            f"({', '.join('?' * len(row))}, {1 << 62})",  # stale: "plain"
            list(row.values()),
        )
    conn.close()
    with SilverStore(path) as store:
        columns = [r[1] for r in store.db.execute("PRAGMA table_xinfo(token_transfers)")]
        assert "_csv_quote" not in columns and ESCAPE_MASK in columns
        indexes = {r[1] for r in store.db.execute("PRAGMA index_list(token_transfers)")}
        assert "token_transfers_by_time" in indexes and "token_transfers_by_target_id" in indexes
        rows, back = exported(store, "token_transfers", tmp_path)
    assert rows == [row] and back[0]["token_symbol"] == 'a,b"c'
    with SilverStore(path) as store:  # a second open changes nothing
        assert store.count("token_transfers") == 1
