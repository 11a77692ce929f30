"""Export speed and memory: our writer path against the sqlite3 CLI and sqlite-utils.

    .venv/bin/python bench/export.py [--rows 1000000]

Builds (once, cached under bench/.work/) a Silver store of `--rows` token_transfers rows
through the real validated ingest, then times, in the same run and over the same queries
(unfiltered, and one target plus a time range): `export_to_file` to CSV and JSONL (sha256
included), `sqlite3 -csv -header` into a file, and `sqlite-utils query --csv` / `--nl`.
Peak RSS of an export is measured in a fresh subprocess for 100k rows and for all rows.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from transfers import START_MS, STEP_MS, transfer_rows  # noqa: E402

from silverexport.silver.catalog import get_dataset  # noqa: E402
from silverexport.silver.store import SilverStore  # noqa: E402
from silverexport.silver.writers import Filters, export_to_file  # noqa: E402
from silverexport.timeutil import normalize_time  # noqa: E402

DATASET = "token_transfers"
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
SQLITE_UTILS = str(Path(sys.executable).parent / "sqlite-utils")


def build(rows: int) -> Path:
    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    path = work / f"silver-{rows}.db"
    if path.exists():
        with SilverStore(path) as store:  # opening brings an older layout up to date
            if store.count(DATASET) == rows:
                return path
        path.unlink()
    print(f"building {rows:,} rows in {path} (cached for later runs) ...", flush=True)
    t0 = time.perf_counter()
    with SilverStore(path) as store:
        store.ingest(DATASET, transfer_rows(rows))
    print(f"  built in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


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


def run_cli(args: list[str], out: Path) -> None:
    with out.open("wb") as f:
        subprocess.run(args, stdout=f, check=True)


def report(label: str, n: int, times: dict[str, float]) -> None:
    print(f"\n{label}: {n:,} rows")
    for name, secs in times.items():
        print(f"  {name:<20} {secs:7.3f} s  {n / secs:>11,.0f} rows/s")
    for fmt, other in (("csv", "sqlite-utils --csv"), ("jsonl", "sqlite-utils --nl")):
        mine = times[f"ours {fmt}"]
        vs_cli, vs_utils = times["sqlite3 -csv"] / mine, times[other] / mine
        met = "met" if vs_cli >= 0.6 and vs_utils >= 3 else "MISSED"
        print(
            f"  ours {fmt}: {vs_cli:.2f}x the sqlite3 CLI's rows/s, {vs_utils:.1f}x {other}'s"
            f"  (targets >= 0.6x and >= 3x: {met})"
        )


def peak_rss_mb(db: Path, rows: int, fmt: str, out: Path) -> float:
    """Peak RSS of a fresh process that only runs one export (no other allocations)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork+exec.
    code = (
        "import re,sys; sys.path.insert(0, sys.argv[1]);"
        "from silverexport.silver.writers import export_to_file;"
        "export_to_file(sys.argv[2], 'token_transfers', sys.argv[4], sys.argv[5],"
        " limit=int(sys.argv[3]));"
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    args = [sys.executable, "-c", code, str(ROOT), str(db), str(rows), fmt, str(out)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return int(done.stdout.strip()) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the fast paths")
    args = parser.parse_args()
    db = build(args.rows)
    out = HERE / ".work" / "out"
    out.mkdir(exist_ok=True)
    print(f"CPU cores: {os.cpu_count()}; SQLite {_sqlite_version()}; rows: {args.rows:,}")

    # One target over the middle half of the time range.
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
            "ours csv": timed(lambda: ours("csv"), args.repeat),
            "ours jsonl": timed(lambda: ours("jsonl"), args.repeat),
            "sqlite3 -csv": timed(
                cli([SQLITE3, "-csv", "-header", str(db), sql], "c.csv"), args.repeat
            ),
            # sqlite-utils is several times slower: once is enough.
            "sqlite-utils --csv": timed(cli([*utils, "--csv"], "u.csv"), 1),
            "sqlite-utils --nl": timed(cli([*utils, "--nl"], "u.nl"), 1),
        }
        report(label, results["csv"].rows, times)

    print("\npeak RSS of one export in a fresh process:")
    sizes = sorted({min(100_000, args.rows), args.rows})
    for fmt in ("csv", "jsonl"):
        figures = [f"{r:,} rows {peak_rss_mb(db, r, fmt, out / 'm'):.1f} MB" for r in sizes]
        print(f"  {fmt:<5} " + ", ".join(figures))
    print(f"  (this process, for reference: {_self_rss_mb():.1f} MB)")
    return 0


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
