"""The CLI export as a user feels it: whole processes, start-up included, against sqlite3's CLI.

    .venv/bin/python bench/cli_export.py [--rows 1000000] [--rounds 3] [--old DIR]

Times, in the same run and in turns, over one Silver store of `--rows` token_transfers rows:
- `silverexport export token_transfers --format csv -o FILE` (the installed console script,
  SILVEREXPORT_MAX_RECORDS raised to the row count, in one data dir reused by every run, as
  a user would) against
  `sqlite3 -csv -header DB "select * from token_transfers" > /dev/null`;
- the same with `--format jsonl` against `sqlite3 DB "select json_object(...) ..." > /dev/null`;
- start-up: the same command on a filter that matches no row, and `import` of the CLI alone.
With `--old DIR` (a copy of an older tree, e.g. `git archive main | tar -x -C DIR`), the
same exports and start-up by `python -P -m silverexport` from DIR are timed in the same
turns, in a data dir of their own, so that old and new code meet the same moments of a shared
machine (-P: DIR's code even when run from this tree's root, which would come first on the path).
Target: the CLI export >= 0.6x the speed of the sqlite3 CLI in both formats (median of the
rounds). The store is built once through the real ingest and kept under bench/.work/ for
later runs while its schema stays the current one.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import DATASET, WORK, cached_store, clean_env, machine, make_parser

from silverexport.silver.catalog import get_dataset

TARGET = 0.6
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
SCRIPT = Path(sys.executable).parent / "silverexport"


def build(rows: int) -> Path:
    """A store of `rows` transfers, rebuilt when the code's schema has changed since."""
    return cached_store(f"cli-silver-{rows}.db", rows, same_schema=True)[0]


def run(args: list[str], *, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the child's and its threads') of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu


class Ours:
    """`silverexport export` in one data dir holding the store, as a user runs it again and
    again; each run's job file is deleted afterwards so that the disk does not fill up."""

    def __init__(self, store: Path, data: Path, rows: int, tree: Path | None = None):
        data.mkdir()
        shutil.copyfile(store, data / "silver.db")  # ours to open, the cached store untouched
        self.data = data
        self.env = clean_env(max_records=str(max(rows, 1)))
        self.command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "silverexport"]
        if tree is not None:  # that tree's code, found before the installed one
            self.env["PYTHONPATH"] = str(tree)
            # -P: not the current directory first (this tree, when run from its root)
            self.command = [sys.executable, "-P", "-m", "silverexport"]

    def export(self, fmt: str, *extra: str) -> tuple[float, float]:
        out = self.data.parent / f"out.{fmt}"
        args = [*self.command, "export", DATASET, "--format", fmt, "-o", str(out), *extra]
        figures = run([*args, "--data-dir", str(self.data)], env=self.env)
        out.unlink()
        for done in (self.data / "exports").glob(f"*.{fmt}"):
            done.unlink()
        return figures


def json_object_sql() -> str:
    """One JSON object per row, as our JSONL lines are (decimals are text in both)."""
    columns = get_dataset(DATASET).column_names
    pairs = ", ".join(f"'{c}', {c}" for c in columns)
    return f"SELECT json_object({pairs}) FROM {DATASET}"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", type=Path, help="also time the code in this tree, in turns")
    args = parser.parse_args(argv)
    print(f"{machine()} sqlite3 CLI={SQLITE3}")
    built = build(args.rows)
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        ours = Ours(built, Path(tmp) / "data", args.rows)
        old = None if args.old is None else Ours(built, Path(tmp) / "old", args.rows, args.old)
        store = str(ours.data / "silver.db")
        references = {
            "csv": [SQLITE3, "-csv", "-header", store, f"SELECT * FROM {DATASET}"],
            "jsonl": [SQLITE3, store, json_object_sql()],
        }
        times: dict[str, list[tuple[float, float]]] = {}
        for fmt in ("csv", "jsonl"):  # warm the page cache, and the data dir, for both sides
            ours.export(fmt)
            run(references[fmt])
            if old is not None:
                old.export(fmt)
        for _ in range(args.rounds):
            for fmt, reference in references.items():
                times.setdefault(f"ours {fmt}", []).append(ours.export(fmt))
                times.setdefault(f"sqlite3 {fmt}", []).append(run(reference))
                if old is not None:
                    times.setdefault(f"old {fmt}", []).append(old.export(fmt))
            for name, side in (("", ours), ("old ", old)):
                if side is None:
                    continue
                nothing = side.export("csv", "--target-id", "nobody")
                times.setdefault(f"{name}start-up", []).append(nothing)
                times.setdefault(f"{name}import", []).append(
                    run(
                        [sys.executable, "-P", "-c", "import silverexport.commands.jobs_cmds"],
                        env=side.env,
                    )
                )
    return report(times, args.rows)


def report(times: dict[str, list[tuple[float, float]]], rows: int) -> int:
    """Medians; the target is on wall time. CPU time is printed beside it: on a shared
    machine it moves less than wall time does."""
    wall = {name: statistics.median(w for w, _ in t) for name, t in times.items()}
    cpu = {name: statistics.median(c for _, c in t) for name, t in times.items()}
    for name, t in times.items():
        runs = ", ".join(f"{w:.2f}" for w, _ in t)
        print(f"{name:>13}: median {wall[name]:.3f} s wall ({runs}), {cpu[name]:.3f} s CPU")
    ok = True
    for fmt in ("csv", "jsonl"):
        ratio = wall[f"sqlite3 {fmt}"] / wall[f"ours {fmt}"]
        ok = ok and ratio >= TARGET
        print(
            f"{fmt}: {rows / wall[f'ours {fmt}']:,.0f} rows/s whole process, "
            f"{ratio:.2f}x the sqlite3 CLI (target >= {TARGET}x); CPU time "
            f"{cpu[f'ours {fmt}'] / cpu[f'sqlite3 {fmt}']:.2f}x the CLI's"
        )
        if f"old {fmt}" in wall:
            print(
                f"{fmt}, the old tree: {wall[f'sqlite3 {fmt}'] / wall[f'old {fmt}']:.2f}x the "
                f"sqlite3 CLI; new / old speed {wall[f'old {fmt}'] / wall[f'ours {fmt}']:.2f}x"
            )
    print(
        f"start-up (an export of no rows) {wall['start-up']:.3f} s, "
        f"of which python and the imports of `export` {wall['import']:.3f} s: "
        f"{'OK' if ok else 'MISSED'}"
    )
    if "old start-up" in wall:
        print(
            f"start-up, the old tree: {wall['old start-up']:.3f} s ({cpu['old start-up']:.3f} s "
            f"CPU, new {cpu['start-up']:.3f} s), imports {wall['old import']:.3f} s "
            f"({cpu['old import']:.3f} s CPU, new {cpu['import']:.3f} s)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
