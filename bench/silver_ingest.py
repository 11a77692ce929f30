"""Silver ingest speed on SQLite: the row checks alone, and `SilverStore.ingest` whole.

    .venv/bin/python bench/silver_ingest.py [--rows 200000] [--rounds 3] [--old DIR]

Each measurement is a fresh process (`python -P`, the tree's code first on PYTHONPATH) that
makes `--rows` token_transfers rows of bench/transfers.py in memory (not timed), then times
`RowChecker` over all of them, and `SilverStore.ingest` of all of them into a new file in a
temporary directory (checks and SQLite's inserts, one transaction). With `--old DIR` (a copy
of an older tree, e.g. `git archive main | tar -x -C DIR`) the same is run from DIR in turns
with this tree, so both meet the same moments of a shared machine: compare the ratio.
CPU seconds are printed beside wall seconds; on a shared machine they move less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATASET = "token_transfers"


def child(rows: int) -> None:
    """One measurement, printed as JSON: {name: [wall s, CPU s]}."""
    from transfers import transfer_rows

    from silverexport.silver.catalog import get_dataset
    from silverexport.silver.store import RowChecker, SilverStore

    data = list(transfer_rows(rows))
    check = RowChecker(get_dataset(DATASET))
    figures = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for line, row in enumerate(data, 1):
        check(line, row)
    figures["checks"] = [time.perf_counter() - t0, time.process_time() - c0]
    with tempfile.TemporaryDirectory() as tmp, SilverStore(Path(tmp) / "silver.db") as store:
        t0, c0 = time.perf_counter(), time.process_time()
        assert store.ingest(DATASET, data) == rows
        figures["ingest"] = [time.perf_counter() - t0, time.process_time() - c0]
    print(json.dumps(figures))


def measure(tree: Path, rows: int) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SILVEREXPORT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(HERE)])
    out = subprocess.run(
        [sys.executable, "-P", __file__, "--child", str(rows)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", type=Path, help="also time the code in this tree, in turns")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return 0
    print(f"cpu_count={os.cpu_count()} python={sys.version.split()[0]} rows={args.rows:,}")
    sides = {"new": ROOT} | ({} if args.old is None else {"old": args.old.resolve()})
    runs: dict[str, list[dict[str, list[float]]]] = {side: [] for side in sides}
    for _ in range(args.rounds):
        for side, tree in sides.items():
            runs[side].append(measure(tree, args.rows))
    for what in ("checks", "ingest"):
        rates = {}
        for side, results in runs.items():
            wall = statistics.median(r[what][0] for r in results)
            cpu = statistics.median(r[what][1] for r in results)
            rates[side] = args.rows / wall
            each = ", ".join(f"{r[what][0]:.2f}" for r in results)
            print(
                f"{side} {what:>6}: {rates[side]:>9,.0f} rows/s (median {wall:.2f} s wall of "
                f"{each}; {cpu:.2f} s CPU, {cpu / args.rows * 1e6:.1f} us/row)"
            )
        if "old" in rates:
            print(f"    {what}: new / old speed {rates['new'] / rates['old']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
