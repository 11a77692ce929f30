"""Export speed and memory: our writer path against the sqlite3 CLI and sqlite-utils.

    .venv/bin/python bench/export.py [--rows 1000000]

Builds (once, cached under bench/.work/) a Silver store of `--rows` token_transfers rows
through the real validated ingest, then times, in the same run and over the same queries
(unfiltered, and one target plus a time range): `export_to_file` to CSV and JSONL (sha256
included), `sqlite3 -csv -header` into a file, and `sqlite-utils query --csv` / `--nl`.
Peak RSS of an export is measured in a fresh subprocess for 100k rows and for all rows.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchkit import (
    DATASET,
    WORK,
    best_seconds,
    cached_store,
    export_cases,
    make_parser,
    peak_rss_mb,
    plain_sql,
    print_peak_rss,
    print_rates,
)

from silverexport.silver.writers import Filters, export_to_file

SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
SQLITE_UTILS = str(Path(sys.executable).parent / "sqlite-utils")


def build(rows: int) -> Path:
    """The cached store of `rows` transfers (bench/parquet.py uses it too)."""
    return cached_store(f"silver-{rows}.db", rows)[0]


def run_cli(args: list[str], out: Path) -> None:
    with out.open("wb") as f:
        subprocess.run(args, stdout=f, check=True)


def report(label: str, n: int, times: dict[str, float]) -> None:
    print(f"\n{label}: {n:,} rows")
    print_rates(times, n, 20)
    for fmt, other in (("csv", "sqlite-utils --csv"), ("jsonl", "sqlite-utils --nl")):
        mine = times[f"ours {fmt}"]
        vs_cli, vs_utils = times["sqlite3 -csv"] / mine, times[other] / mine
        met = "met" if vs_cli >= 0.6 and vs_utils >= 3 else "MISSED"
        print(
            f"  ours {fmt}: {vs_cli:.2f}x the sqlite3 CLI's rows/s, {vs_utils:.1f}x {other}'s"
            f"  (targets >= 0.6x and >= 3x: {met})"
        )


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the fast paths")
    args = parser.parse_args()
    db = build(args.rows)
    out = WORK / "out"
    out.mkdir(exist_ok=True)
    print(f"CPU cores: {os.cpu_count()}; SQLite {_sqlite_version()}; rows: {args.rows:,}")
    cases = export_cases(args.rows)  # all rows, and one target over half the time range
    run_cli([SQLITE3, "-csv", "-header", str(db), plain_sql("")], out / "warm.csv")
    for label, (filters, where) in cases.items():
        sql = plain_sql(where)
        results = {}

        def ours(fmt: str, filters: Filters = filters, results: dict = results) -> None:
            results[fmt] = export_to_file(
                db, DATASET, fmt, out / f"ours.{fmt}", filters=filters, limit=args.rows
            )

        def cli(argv: list[str], name: str) -> Callable[[], None]:
            return lambda: run_cli(argv, out / name)

        utils = [SQLITE_UTILS, "query", str(db), sql]
        times = {
            "ours csv": best_seconds(lambda: ours("csv"), args.repeat),
            "ours jsonl": best_seconds(lambda: ours("jsonl"), args.repeat),
            "sqlite3 -csv": best_seconds(
                cli([SQLITE3, "-csv", "-header", str(db), sql], "c.csv"), args.repeat
            ),
            # sqlite-utils is several times slower: once is enough.
            "sqlite-utils --csv": best_seconds(cli([*utils, "--csv"], "u.csv"), 1),
            "sqlite-utils --nl": best_seconds(cli([*utils, "--nl"], "u.nl"), 1),
        }
        report(label, results["csv"].rows, times)

    def rss(rows: int, fmt: str) -> float:
        return peak_rss_mb("silverexport.silver.writers", db, rows, fmt, out / "m")

    print_peak_rss(rss, args.rows, ("csv", "jsonl"))
    print(f"  (this process, for reference: {_self_rss_mb():.1f} MB)")
    return 0


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
