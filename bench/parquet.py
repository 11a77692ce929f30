"""Parquet export speed, size and memory: ours beside our CSV export and beside DuckDB.

    .venv/bin/python bench/parquet.py [--rows 1000000] [--repeat 3]

On the same cached Silver store as bench/export.py (`--rows` token_transfers rows, built
once through the real ingest), in the same run:
- rows/s of `export_to_file` to Parquet and to CSV (best of `--repeat`), target >= 0.5x CSV;
- DuckDB writing the same rows, in the same order and with the same column types, from the
  same SQLite file to a zstd Parquet file (`COPY (SELECT ... FROM sqlite_scan(...) ORDER BY
  ...) TO ...`), with the SQLite extension loaded from its PyPI package (never downloaded);
- the decimal pre-pass alone (one aggregate over the export's rows);
- reading the rows into Arrow with ADBC against sqlite3 fetches turned into Arrow arrays;
- file sizes of JSONL, CSV and Parquet; peak RSS of one Parquet (and CSV) export in a fresh
  process for 100k rows and for all rows.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from benchkit import (
    DATASET,
    WORK,
    best_seconds,
    make_parser,
    peak_rss_mb,
    print_peak_rss,
    print_rates,
)
from export import build

from silverexport.silver import parquet_sqlite
from silverexport.silver.catalog import ColumnKind, get_dataset
from silverexport.silver.parquet import arrow_schema
from silverexport.silver.writers import Filters, export_to_file


def duckdb_copy(db: Path, out: Path, rows: int, schema: pa.Schema) -> Callable[[], None] | None:
    """DuckDB's COPY of the same rows with the same types, or None (and why) if unavailable."""
    try:
        import duckdb
        import duckdb_extension_sqlite_scanner as ext
    except ImportError as e:
        print(f"  (DuckDB anchor skipped: {e}; pip install -e '.[bench]')")
        return None
    path = Path(ext.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    path = path / "sqlite_scanner.duckdb_extension"
    if not path.exists():
        print(f"  (DuckDB anchor skipped: no sqlite_scanner build for duckdb {duckdb.__version__})")
        return None
    ds = get_dataset(DATASET)
    cols = []
    for c, field in zip(ds.columns, schema, strict=True):
        if c.kind is ColumnKind.TIME:
            cols.append(f"CAST({c.name} AS TIMESTAMPTZ) AS {c.name}")
        elif pa.types.is_decimal(field.type):
            t = field.type
            cols.append(f"CAST({c.name} AS DECIMAL({t.precision},{t.scale})) AS {c.name}")
        else:
            cols.append(c.name)
    sql = (
        f"COPY (SELECT {', '.join(cols)} FROM sqlite_scan('{db}', '{DATASET}') "
        f"ORDER BY block_time, id LIMIT {rows}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )

    def run() -> None:
        con = duckdb.connect(
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"LOAD '{path}'")
            con.execute(sql)
        finally:
            con.close()

    return run


def read_with_sqlite3(db: Path, rows: int) -> int:
    ds = get_dataset(DATASET)
    types = [pa.int64() if c.kind is ColumnKind.INTEGER else pa.string() for c in ds.columns]
    sql = f"SELECT {', '.join(ds.column_names)} FROM {DATASET} ORDER BY block_time, id LIMIT ?"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    n = 0
    try:
        cursor = conn.execute(sql, [rows])
        while batch := cursor.fetchmany(16384):
            columns = list(zip(*batch, strict=True))
            arrays = [pa.array(col, t) for col, t in zip(columns, types, strict=True)]
            n += pa.RecordBatch.from_arrays(arrays, names=list(ds.column_names)).num_rows
    finally:
        conn.close()
    return n


def read_with_adbc(db: Path, rows: int) -> int:
    ds = get_dataset(DATASET)
    where, params = parquet_sqlite.where_sql(ds, Filters())
    conn = parquet_sqlite._connect(db)
    n = 0
    try:
        cursor = conn.cursor()
        cursor.adbc_statement.set_options(**{parquet_sqlite.BATCH_OPTION: "16384"})
        cursor.execute(parquet_sqlite.rows_sql(ds, where), [*params, rows])
        for batch in parquet_sqlite.stored_batches(cursor.fetch_record_batch(), ds.columns):
            n += batch.num_rows
        cursor.close()
    finally:
        conn.close()
    return n


def prepass(db: Path, rows: int) -> dict:
    ds = get_dataset(DATASET)
    where, params = parquet_sqlite.where_sql(ds, Filters())
    conn = parquet_sqlite._connect(db)
    try:
        cursor = conn.cursor()
        shapes = parquet_sqlite.read_shapes(cursor, ds, where, params, rows)
        cursor.close()
    finally:
        conn.close()
    return shapes


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    db = build(args.rows)
    out = WORK / "out"
    out.mkdir(exist_ok=True)
    n = args.rows
    print(f"CPU cores: {os.cpu_count()}; SQLite {sqlite3.sqlite_version}; pyarrow {pa.__version__}")

    def ours(fmt: str) -> Callable[[], None]:
        return lambda: export_to_file(db, DATASET, fmt, out / f"ours.{fmt}", limit=n)

    times = {
        "ours parquet": best_seconds(ours("parquet"), args.repeat),
        "ours csv": best_seconds(ours("csv"), args.repeat),
    }
    export_to_file(db, DATASET, "jsonl", out / "ours.jsonl", limit=n)
    shapes = prepass(db, n)
    schema = arrow_schema(get_dataset(DATASET), shapes)
    duck = duckdb_copy(db, out / "duckdb.parquet", n, schema)
    if duck is not None:
        times["duckdb COPY"] = best_seconds(duck, args.repeat)
    times["decimal pre-pass"] = best_seconds(lambda: prepass(db, n), args.repeat)
    times["read: ADBC"] = best_seconds(lambda: read_with_adbc(db, n), args.repeat)
    times["read: sqlite3"] = best_seconds(lambda: read_with_sqlite3(db, n), args.repeat)

    print(f"\n{DATASET}: {n:,} rows (best of {args.repeat})")
    print_rates(times, n, 18)
    ratio = times["ours csv"] / times["ours parquet"]
    met = "met" if ratio >= 0.5 else "MISSED"
    print(f"  parquet: {ratio:.2f}x our CSV rows/s (target >= 0.5x: {met})")
    if "duckdb COPY" in times:
        print(f"  parquet: {times['duckdb COPY'] / times['ours parquet']:.2f}x DuckDB's rows/s")
    print(f"  pre-pass: {times['decimal pre-pass'] / times['ours parquet']:.0%} of the export")
    print(f"  ADBC reads {times['read: sqlite3'] / times['read: ADBC']:.1f}x faster than sqlite3")

    print("\nfile sizes:")
    for name in ("ours.jsonl", "ours.csv", "ours.parquet", "duckdb.parquet"):
        if (out / name).exists():
            print(f"  {name:<15} {(out / name).stat().st_size / 2**20:8.1f} MiB")
    types = {f.name: str(f.type) for f in pq.read_schema(out / "ours.parquet")}
    print(f"  our amount column: {types['amount']}; block_time: {types['block_time']}")

    def rss(rows: int, fmt: str) -> float:
        return peak_rss_mb("silverexport.silver.writers", db, rows, fmt, out / "m")

    print_peak_rss(rss, n, ("parquet", "csv"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
