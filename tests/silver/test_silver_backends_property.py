"""Hypothesis: any rows give the same bytes in every format from the SQLite store and the
PostgreSQL store, whether ingested or written into PostgreSQL with plain SQL.

The row strategies are the round-trip property's; text columns lose their NULs first, which
PostgreSQL text cannot hold (its ingest refuses them, naming the line and column).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from silverexport.silver.catalog import DATASETS, ColumnKind, Dataset
from silverexport.silver.postgres_store import PostgresSilverStore
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import export_to_file
from tests.silver.test_silver_roundtrip_property import expected, rows_of, stored

FORMATS = (("jsonl", None), ("csv", None), ("parquet", None), ("csv", "gzip"))


def without_nul(ds: Dataset, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    texts = {c.name for c in ds.columns if c.kind is ColumnKind.TEXT}
    return [
        {
            k: v.replace("\x00", "0") if k in texts and isinstance(v, str) else v
            for k, v in r.items()
        }
        for r in rows
    ]


def files(store: Any, ds: Dataset, out: Path) -> dict[str, bytes]:
    found = {}
    for fmt, compression in FORMATS:
        path = out / f"{fmt}.{compression}"
        export_to_file(store, ds.name, fmt, path, limit=100, batch_size=5, compression=compression)
        found[path.name] = path.read_bytes()
    return found


def insert_with_sql(url: str, ds: Dataset, rows: list[dict[str, Any]]) -> None:
    """The rows as another program INSERTs them into PostgreSQL (booleans as booleans)."""
    names = ds.column_names
    sql = f"INSERT INTO {ds.name} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
    kinds = [c.kind for c in ds.columns]
    with psycopg.connect(url) as conn:
        for row in rows:
            values = stored(ds, row)
            conn.execute(
                sql,
                [
                    bool(v) if k is ColumnKind.BOOLEAN else v
                    for k, v in zip(kinds, values, strict=True)
                ],
            )


@pytest.mark.parametrize("name", list(DATASETS))
def test_any_rows_give_the_same_files_on_both_backends(name, postgres_url):
    ds = DATASETS[name]
    with (
        tempfile.TemporaryDirectory() as tmp,
        SilverStore(Path(tmp) / "silver.db") as lite,
        PostgresSilverStore(postgres_url) as pg,
    ):
        out = Path(tmp)

        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(rows_of(ds))
        def check(rows: list[dict[str, Any]]) -> None:
            rows = without_nul(ds, rows)
            lines = [json.dumps(r).encode() + b"\n" for r in rows]
            lite.db.execute(f"DELETE FROM {ds.name}")
            pg.conn.execute(f"DELETE FROM {ds.name}")
            lite.ingest_jsonl(ds.name, lines)
            pg.ingest_jsonl(ds.name, lines)
            (out / "lite").mkdir(exist_ok=True)
            (out / "pg").mkdir(exist_ok=True)
            want = files(lite, ds, out / "lite")
            assert files(pg, ds, out / "pg") == want

            pg.conn.execute(f"DELETE FROM {ds.name}")
            insert_with_sql(postgres_url, ds, expected(ds, rows))
            assert files(pg, ds, out / "pg") == want

        check()
