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
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from transfers import START_MS, STEP_MS, transfer_rows  # noqa: E402

from silverexport.silver.catalog import get_dataset  # noqa: E402
from silverexport.silver.postgres_export import export_to_file  # noqa: E402
from silverexport.silver.postgres_store import PostgresSilverStore  # noqa: E402
from silverexport.silver.writers import Filters  # noqa: E402
from silverexport.timeutil import normalize_time  # noqa: E402

DATASET = "token_transfers"
PSQL = os.environ.get("PSQL", "/usr/lib/postgresql/15/bin/psql")


def plain_sql(where: str) -> str:
    cols = ", ".join(get_dataset(DATASET).column_names)
    return f"SELECT {cols} FROM {DATASET}{where} ORDER BY block_time, id"


def timed(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def psql_copy(url: str, sql: str, out: Path) -> None:
    with out.open("wb") as f:
        subprocess.run(
            [PSQL, "-X", "-q", url, "-c", f"\\copy ({sql}) TO STDOUT WITH CSV HEADER"],
            stdout=f,
            check=True,
        )


def peak_rss_mb(url: str, rows: int, fmt: str, out: Path) -> float:
    """Peak RSS (VmHWM) of a fresh process that only runs one export."""
    code = (
        "import re,sys; sys.path.insert(0, sys.argv[1]);"
        "from silverexport.silver.postgres_export import export_to_file;"
        "export_to_file(sys.argv[2], 'token_transfers', sys.argv[4], sys.argv[5],"
        " limit=int(sys.argv[3]));"
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    args = [sys.executable, "-c", code, str(ROOT), url, str(rows), fmt, str(out)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return int(done.stdout.strip()) / 1024


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
    out = HERE / ".work" / "pg"
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    print(f"CPU cores: {os.cpu_count()}; load average {load:.2f}; rows: {args.rows:,}")
    lo = START_MS + args.rows // 4 * STEP_MS
    hi = START_MS + 3 * args.rows // 4 * STEP_MS
    frm, to = normalize_time(lo), normalize_time(hi)
    cases = {
        "unfiltered": (Filters(), ""),
        "t3 + time range": (
            Filters(target_id="t3", from_=frm, to=to),
            f" WHERE target_id = 't3' AND block_time >= '{frm}' AND block_time < '{to}'",
        ),
    }
    psql_copy(url, plain_sql(""), out / "warm.csv")  # the table in the page cache for both
    for label, (filters, where) in cases.items():
        results = {}

        def ours(fmt: str, filters: Filters = filters, results: dict = results) -> None:
            results[fmt] = export_to_file(
                url, DATASET, fmt, out / f"ours.{fmt}", filters=filters, limit=args.rows
            )

        times = {
            "ours csv": timed(lambda: ours("csv"), args.repeat),
            "ours jsonl": timed(lambda: ours("jsonl"), args.repeat),
            "psql \\copy csv": timed(
                lambda w=where: psql_copy(url, plain_sql(w), out / "psql.csv"), args.repeat
            ),
        }
        n = results["csv"].rows
        print(f"\n{label}: {n:,} rows")
        for name, secs in times.items():
            print(f"  {name:<16} {secs:7.3f} s  {n / secs:>11,.0f} rows/s")
        for fmt in ("csv", "jsonl"):
            ratio = times["psql \\copy csv"] / times[f"ours {fmt}"]
            met = "met" if ratio >= 0.6 else "MISSED"
            print(f"  ours {fmt}: {ratio:.2f}x psql \\copy's rows/s (target >= 0.6x: {met})")
    print("\npeak RSS of one export in a fresh process:")
    sizes = sorted({min(100_000, args.rows), args.rows})
    for fmt in ("csv", "jsonl"):
        figures = [f"{r:,} rows {peak_rss_mb(url, r, fmt, out / 'm'):.1f} MB" for r in sizes]
        print(f"  {fmt:<5} " + ", ".join(figures))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N")
    parser.add_argument(
        "--ingest", type=int, default=200_000, help="rows through ingest; the rest by SQL"
    )
    parser.add_argument("--url", help="a PostgreSQL database to use (default: start one)")
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        from tests import postgres_server

        server = postgres_server.PostgresServer().start()
        url = server.url(server.fresh_database())
    try:
        run(url, args)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
