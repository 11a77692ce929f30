"""Reading a Parquet export back with pyarrow, DuckDB and Polars, into comparable values.

Every reader's values are brought to one shape: integers, booleans, times as epoch
milliseconds, decimals as `Decimal` (or the exact text where the column is STRING), text as
text. The expected rows come from the Silver store itself, in export order.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from silverexport.silver.catalog import ColumnKind, Dataset
from silverexport.timeutil import parse_canonical

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def epoch_ms(dt: datetime) -> int:
    return (dt - EPOCH) // MS


def stored_rows(store_path: Path, ds: Dataset, limit: int | None = None) -> list[dict[str, Any]]:
    """The rows as stored, in (time, id) order, with times as epoch ms."""
    cols = ", ".join(f'"{c}"' for c in ds.column_names)
    sql = f'SELECT {cols} FROM "{ds.name}" ORDER BY "{ds.time_column}", "id"'
    conn = sqlite3.connect(store_path)
    try:
        rows = conn.execute(sql + (f" LIMIT {limit}" if limit else "")).fetchall()
    finally:
        conn.close()
    out = []
    for row in rows:
        value = {}
        for c, v in zip(ds.columns, row, strict=True):
            if v is not None and c.kind is ColumnKind.TIME:
                v = epoch_ms(parse_canonical(v))
            elif v is not None and c.kind is ColumnKind.BOOLEAN:
                v = bool(v)
            value[c.name] = v
        out.append(value)
    return out


def smallest_decimal(texts: list[str | None]) -> tuple[int, int] | None:
    """(precision, scale) that SPEC §3 asks for, or None where it must be STRING."""
    int_digits = scale = 0
    for text in texts:
        if text is None:
            continue
        whole, _, frac = text.lstrip("-").partition(".")
        int_digits = max(int_digits, 0 if whole == "0" else len(whole))
        scale = max(scale, len(frac))
    precision = max(1, int_digits + scale)
    return None if precision > 38 else (precision, scale)


def expected_types(ds: Dataset, rows: list[dict[str, Any]]) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {}
    for c in ds.columns:
        if c.kind is ColumnKind.INTEGER:
            types[c.name] = pa.int64()
        elif c.kind is ColumnKind.BOOLEAN:
            types[c.name] = pa.bool_()
        elif c.kind is ColumnKind.TIME:
            types[c.name] = pa.timestamp("ms", tz="UTC")
        elif c.kind is ColumnKind.DECIMAL:
            shape = smallest_decimal([r[c.name] for r in rows])
            types[c.name] = pa.string() if shape is None else pa.decimal128(*shape)
        else:
            types[c.name] = pa.string()
    return types


def comparable(ds: Dataset, rows: list[dict[str, Any]], types: dict[str, pa.DataType]):
    """Stored rows with each decimal as the reader must give it: Decimal, or exact text."""
    out = []
    for row in rows:
        value = dict(row)
        for c in ds.columns:
            decimal = pa.types.is_decimal(types[c.name])
            if c.kind is ColumnKind.DECIMAL and row[c.name] is not None and decimal:
                value[c.name] = Decimal(row[c.name])
        out.append(value)
    return out


def _normal(ds: Dataset, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for c in ds.columns:
            v = row[c.name]
            if isinstance(v, datetime):
                row[c.name] = epoch_ms(v)
    return rows


def read_pyarrow(path: Path, ds: Dataset) -> tuple[pa.Schema, list[dict[str, Any]]]:
    table = pq.read_table(path)
    return table.schema, _normal(ds, table.to_pylist())


def read_duckdb(path: Path, ds: Dataset) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """DuckDB's column types (as it names them) and rows; times fetched as epoch ms, so that
    no Python time zone library is involved."""
    con = duckdb.connect()
    try:
        source = f"read_parquet('{path}')"
        types = {
            name: kind
            for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        }
        select = ", ".join(
            f'epoch_ms("{c.name}") AS "{c.name}"' if c.kind is ColumnKind.TIME else f'"{c.name}"'
            for c in ds.columns
        )
        cursor = con.execute(f"SELECT {select} FROM {source}")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()
    return types, rows


def read_polars(path: Path, ds: Dataset) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    frame = pl.read_parquet(path)
    return dict(frame.schema), _normal(ds, frame.to_dicts())


def duckdb_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    return {
        pa.int64(): "BIGINT",
        pa.bool_(): "BOOLEAN",
        pa.string(): "VARCHAR",
        pa.timestamp("ms", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
    }[t]


def polars_type(t: pa.DataType) -> Any:
    if pa.types.is_decimal(t):
        return pl.Decimal(t.precision, t.scale)
    return {
        pa.int64(): pl.Int64,
        pa.bool_(): pl.Boolean,
        pa.string(): pl.String,
        pa.timestamp("ms", tz="UTC"): pl.Datetime("ms", "UTC"),
    }[t]


def assert_reads_back(path: Path, store_path: Path, ds: Dataset, limit: int | None = None):
    """All three readers give the stored rows, with the column types SPEC §3 names."""
    rows = stored_rows(store_path, ds, limit)
    types = expected_types(ds, rows)
    want = comparable(ds, rows, types)

    schema, got = read_pyarrow(path, ds)
    assert schema.names == list(ds.column_names)
    for field in schema:
        assert field.type == types[field.name], field.name
        assert field.nullable == ds.column(field.name).nullable, field.name
    assert got == want

    duck_types, duck_rows = read_duckdb(path, ds)
    assert duck_types == {name: duckdb_type(t) for name, t in types.items()}
    assert duck_rows == want

    polars_schema, polars_rows = read_polars(path, ds)
    assert polars_schema == {name: polars_type(t) for name, t in types.items()}
    assert polars_rows == want
    return rows
