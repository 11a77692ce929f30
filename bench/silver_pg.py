"""Export speed and memory from the PostgreSQL Silver store, against psql's \\copy.

    .venv/bin/python bench/silver_pg.py [--rows 1000000] [--url postgresql://...]

Without `--url` it starts its own PostgreSQL 15 (tests/postgres_server.py: loopback, temp
dir). It ingests `--ingest` token_transfers rows through the real validated ingest (and copies
them with SQL, later in time, up to `--rows`, as another program may write), then times,
in the same run and over the same queries (unfiltered, and one target plus a time range):
`export_to_file` from the PostgreSQL store to CSV and JSONL (sha256 included) against
`psql -c "\\copy (SELECT ... ORDER BY block_time, id) TO STDOUT WITH CSV HEADER"` into a
file (target >= 0.6x psql's rows/s). Peak RSS of an export is measured in a fresh process for
100k rows and for all rows (flat in rows).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from benchkit import (
    DATASET,
    WORK,
    best_seconds,
    export_cases,
    make_parser,
    peak_rss_mb,
    plain_sql,
    print_peak_rss,
    print_rates,
)
from pg_server import Databases
from transfers import STEP_MS, transfer_rows

from silverexport.silver.catalog import get_dataset
from silverexport.silver.postgres_export import export_to_file
from silverexport.silver.postgres_store import PostgresSilverStore
from silverexport.silver.writers import Filters

PSQL = os.environ.get("PSQL", "/usr/lib/postgresql/15/bin/psql")


def psql_copy(url: str, sql: str, out: Path) -> None:
    with out.open("wb") as f:
        subprocess.run(
            [PSQL, "-X", "-q", url, "-c", f"\\copy ({sql}) TO STDOUT WITH CSV HEADER"],
            stdout=f,
            check=True,
        )


def fill(url: str, rows: int, ingested: int) -> None:
    """`ingested` rows through the real ingest; the rest copies of them written with SQL (as
    another program may), each copy later in time, so (time, id) order runs through all."""
    with PostgresSilverStore(url) as store:
        have = store.count(DATASET)
        if have == rows:
            return
        if have:
            store.conn.execute(f"TRUNCATE {DATASET}")
        base = min(rows, ingested)
        print(f"ingesting {base:,} rows ...", flush=True)
        t0 = time.perf_counter()
        store.ingest(DATASET, transfer_rows(base))
        secs = time.perf_counter() - t0
        print(f"  ingested in {secs:.1f} s ({base / secs:,.0f} rows/s)", flush=True)
        cols = [c for c in get_dataset(DATASET).column_names if c not in ("id", "block_time")]
        names = ", ".join(cols)
        for k in range(1, -(-rows // base)):
            n = min(base, rows - k * base)
            shift = f"interval '{k * base * STEP_MS} milliseconds'"
            store.conn.execute(
                f"INSERT INTO {DATASET} (id, block_time, {names}) SELECT id + {k * base}, "
                f"to_char((block_time::timestamptz + {shift}) AT TIME ZONE 'UTC', "
                f"""'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), {names} FROM {DATASET} """
                f"WHERE id <= {n}"
            )
        if rows > base:
            print(f"  {rows - base:,} more rows copied with SQL", flush=True)
        store.conn.execute(f"VACUUM ANALYZE {DATASET}")


def run(url: str, args: argparse.Namespace) -> None:
    fill(url, args.rows, args.ingest)
    out = WORK / "pg"
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    print(f"CPU cores: {os.cpu_count()}; load average {load:.2f}; rows: {args.rows:,}")
    cases = export_cases(args.rows)
    psql_copy(url, plain_sql(""), out / "warm.csv")  # the table in the page cache for both
    for label, (filters, where) in cases.items():
        results = {}

        def ours(fmt: str, filters: Filters = filters, results: dict = results) -> None:
            results[fmt] = export_to_file(
                url, DATASET, fmt, out / f"ours.{fmt}", filters=filters, limit=args.rows
            )

        times = {
            "ours csv": best_seconds(lambda: ours("csv"), args.repeat),
            "ours jsonl": best_seconds(lambda: ours("jsonl"), args.repeat),
            "psql \\copy csv": best_seconds(
                lambda w=where: psql_copy(url, plain_sql(w), out / "psql.csv"), args.repeat
            ),
        }
        n = results["csv"].rows
        print(f"\n{label}: {n:,} rows")
        print_rates(times, n, 16)
        for fmt in ("csv", "jsonl"):
            ratio = times["psql \\copy csv"] / times[f"ours {fmt}"]
            met = "met" if ratio >= 0.6 else "MISSED"
            print(f"  ours {fmt}: {ratio:.2f}x psql \\copy's rows/s (target >= 0.6x: {met})")

    def rss(rows: int, fmt: str) -> float:
        return peak_rss_mb("silverexport.silver.postgres_export", url, rows, fmt, out / "m")

    print_peak_rss(rss, args.rows, ("csv", "jsonl"))


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N")
    parser.add_argument(
        "--ingest", type=int, default=200_000, help="rows through ingest; the rest by SQL"
    )
    parser.add_argument("--url", help="a PostgreSQL database to use (default: start one)")
    args = parser.parse_args()
    if args.url is not None:
        run(args.url, args)  # rows already there from an earlier run are used again
        return 0
    dbs = Databases(None)
    try:
        run(dbs.fresh(), args)
    finally:
        dbs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
