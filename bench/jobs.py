"""Actor-system benchmark: many small jobs through the Python API, then one big export.

    .venv/bin/python bench/jobs.py [--jobs 1000] [--rows 1000000] [--repeat 3] [--quick]

1. `--jobs` small jobs (a few dozen rows each; a mix of datasets, formats, filters, limits and
   gzip) submitted one after another through `ExportSystem.submit`, then `wait`ed for: jobs/s
   from the first submit to the last completion, submit latency p50/p99, peak thread count
   (sampled every 2 ms) and peak RSS.
2. One `--rows` token_transfers export through the actor system (submit + wait), in CSV and in
   JSONL, against the bare writer path `export_to_file` on the same database in the same run.
   Target: the actor path keeps >= 0.9x the bare writer's rows/s (verdict on the best of the
   runs, the least disturbed by other load; the median ratio is shown too). The CPU column is
   the process CPU seconds of one export (all threads): a load-independent view of the cost.

Every measurement runs `--repeat` times (best and median reported). The big Silver database is
built once through the validated ingest (chunks of 50k rows) and cached under bench/.work/.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from benchkit import WORK, cached_store, load_average, make_parser, shown

from silverexport import ExportRequest, ExportSystem, JobStatus, JobView
from silverexport.model import ExportFormat
from silverexport.silver.catalog import DATASETS, ColumnKind, Dataset
from silverexport.silver.writers import ExportResult, export_to_file
from silverexport.timeutil import format_time

BIG_DATASET = "token_transfers"
START_MS = 1_700_000_000_000
SMALL_STEP_MS = 60_000
SMALL_ROWS_PER_DATASET = 1_200  # 10 targets x 2 networks: 60 rows per (target, network)
TARGETS = 10
NETWORKS = ("ethereum", "arbitrum")
TARGET_RATIO = 0.9
WAIT_TIMEOUT = 600.0


# -- data ------------------------------------------------------------------------------------


def small_rows(ds: Dataset, n: int) -> Iterator[dict[str, Any]]:
    """Valid rows for any dataset, derived from the catalog (so every dataset gets some)."""
    for i in range(n):
        row: dict[str, Any] = {}
        for c in ds.columns:
            if c.name == "id":
                continue
            if c.nullable and i % 5 == 0:
                value: Any = None
            elif c.name == "target_id":
                value = f"t{i % TARGETS}"
            elif c.name == "network":
                value = NETWORKS[(i // TARGETS) % len(NETWORKS)]
            elif c.name == ds.time_column:
                value = START_MS + i * SMALL_STEP_MS
            elif c.kind is ColumnKind.INTEGER:
                value = 1_000 + i
            elif c.kind is ColumnKind.DECIMAL:
                value = f"{i}.{i % 1000:03d}000000000000001"
            elif c.kind is ColumnKind.TIME:
                value = START_MS + i * 1_000
            elif c.kind is ColumnKind.BOOLEAN:
                value = i % 2 == 0
            elif c.kind is ColumnKind.JSON_OBJECT:
                value = {"i": i, "note": 'a, "quoted"\nline'}
            elif c.kind is ColumnKind.CHOICE:
                value = c.choices[i % len(c.choices)]
            else:
                value = f'US"D, C\n{i}' if i % 7 == 0 else f"{c.name}-{i:x}"
            row[c.name] = value
        yield row


def build_big(rows: int) -> Path:
    """The cached Silver DB of `rows` transfers; built (in 50k-row transactions) if missing."""
    path, built = cached_store(f"jobs-silver-{rows}.db", rows)
    if not built:
        print(f"Silver DB: {shown(path)} (cached, {rows:,} rows)")
    return path


def fresh_dir(name: str) -> Path:
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# -- sampling --------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Peak thread count (every `interval` s) and peak RSS (every 10th sample)."""

    def __init__(self, interval: float = 0.002):
        super().__init__(name="bench-sampler", daemon=True)
        self.interval = interval
        self.stop_event = threading.Event()
        self.proc = psutil.Process()
        self.peak_threads = 0  # without this sampler
        self.peak_names: list[str] = []
        self.peak_rss = self.proc.memory_info().rss

    def run(self) -> None:
        tick = 0
        while not self.stop_event.wait(self.interval):
            n = threading.active_count() - 1
            if n > self.peak_threads:
                self.peak_threads = n
                self.peak_names = [t.name for t in threading.enumerate() if t is not self]
            tick += 1
            if tick % 10 == 0:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.join()
        self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)


# -- 1. many small jobs ----------------------------------------------------------------------


def small_requests(n: int, seed: int = 7) -> list[ExportRequest]:
    """A deterministic mix; each request matches 25 to 60 rows."""
    rnd = random.Random(seed)
    names = list(DATASETS)
    span = SMALL_ROWS_PER_DATASET * SMALL_STEP_MS
    requests = []
    for i in range(n):
        ds = names[i % len(names)]
        fmt = ExportFormat.CSV if (i // len(names)) % 2 else ExportFormat.JSONL
        target = f"t{rnd.randrange(TARGETS)}"
        network = rnd.choice(NETWORKS)
        kind = i % 4
        if kind == 0:  # one (target, network): 60 rows
            req = ExportRequest(ds, fmt, target_id=target, network=network)
        elif kind == 1:  # one target over half the time range: ~60 rows
            lo = START_MS + rnd.randrange(span // 2)
            req = ExportRequest(
                ds, fmt, target_id=target, from_=_rfc3339(lo), to=_rfc3339(lo + span // 2)
            )
        elif kind == 2:  # one network, limited: 40 rows (truncated)
            req = ExportRequest(ds, fmt, network=network, limit=40)
        else:  # one target, limited, gzipped: 25 rows
            req = ExportRequest(ds, fmt, target_id=target, limit=25, compression="gzip")
        requests.append(req)
    return requests


def _rfc3339(ms: int) -> str:
    return format_time(datetime.fromtimestamp(ms / 1000, UTC))


@dataclass
class SmallRun:
    jobs: int
    elapsed: float
    submit_elapsed: float
    latencies: list[float]
    peak_threads: int
    peak_names: list[str]
    peak_rss: int
    threads_before: int
    threads_after: int
    rows: int
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.elapsed


def run_small(args: argparse.Namespace, run: int) -> SmallRun:
    data_dir = fresh_dir(f"jobs-small-{run}")
    requests = small_requests(args.jobs)
    threads_before = threading.active_count()
    with Sampler() as sampler:
        with ExportSystem.open(
            data_dir,
            max_concurrent_exports=4,
            catch_up_interval_seconds=args.catch_up,
            progress_interval_seconds=1.0,
        ) as system:
            for ds in DATASETS.values():
                system.store.ingest(ds.name, small_rows(ds, SMALL_ROWS_PER_DATASET))
            latencies, ids = [], []
            t0 = time.perf_counter()
            for req in requests:
                s = time.perf_counter()
                ids.append(system.submit(req, tenant=f"tenant-{len(ids) % 3}").job_id)
                latencies.append(time.perf_counter() - s)
            t_submitted = time.perf_counter()
            views = [system.wait(job_id, timeout=WAIT_TIMEOUT) for job_id in ids]
            elapsed = time.perf_counter() - t0
        threads_after = threading.active_count() - 1
    statuses: dict[str, int] = {}
    for v in views:
        statuses[v.status.value] = statuses.get(v.status.value, 0) + 1
    shutil.rmtree(data_dir, ignore_errors=True)
    return SmallRun(
        jobs=len(ids),
        elapsed=elapsed,
        submit_elapsed=t_submitted - t0,
        latencies=latencies,
        peak_threads=sampler.peak_threads,
        peak_names=sampler.peak_names,
        peak_rss=sampler.peak_rss,
        threads_before=threads_before,
        threads_after=threads_after,
        rows=sum(v.rows for v in views),
        statuses=statuses,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report_small(runs: list[SmallRun]) -> bool:
    rates = [r.jobs_per_s for r in runs]
    p50s = [pct(r.latencies, 0.50) * 1e3 for r in runs]
    p99s = [pct(r.latencies, 0.99) * 1e3 for r in runs]
    peak = max(runs, key=lambda r: r.peak_threads)
    ok = all(r.statuses == {"completed": r.jobs} for r in runs)
    print(f"\n1. {runs[0].jobs:,} small jobs through the Python API (max_concurrent_exports=4)")
    print(f"   {'':30} {'best':>10} {'median':>10}")
    print(f"   {'jobs/s (submit -> all done)':30} {max(rates):>10,.0f} {_median(rates):>10,.0f}")
    submit_rates = [r.jobs / r.submit_elapsed for r in runs]
    print(
        f"   {'submits/s (submit loop only)':30} "
        f"{max(submit_rates):>10,.0f} {_median(submit_rates):>10,.0f}"
    )
    print(f"   {'submit latency p50 (ms)':30} {min(p50s):>10.2f} {_median(p50s):>10.2f}")
    print(f"   {'submit latency p99 (ms)':30} {min(p99s):>10.2f} {_median(p99s):>10.2f}")
    print(
        f"   peak threads: {peak.peak_threads} (before open: {peak.threads_before}, "
        f"after close: {max(r.threads_after for r in runs)}; sampler not counted)"
    )
    print(f"     at peak: {_thread_summary(peak.peak_names)}")
    print(
        f"   peak RSS while running: {max(r.peak_rss for r in runs) / 2**20:,.0f} MiB "
        f"(sampled every 20 ms)"
    )
    per_job = runs[0].rows / runs[0].jobs
    status_text = ", ".join(f"{k}={v}" for k, v in sorted(runs[-1].statuses.items()))
    print(f"   jobs: {status_text}; {per_job:.1f} rows/job on average")
    return ok


def _thread_summary(names: list[str]) -> str:
    counts: dict[str, int] = {}
    for name in names:
        key = name.split("-")[0] if name.startswith(("Thread", "ExportActor")) else name
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(counts.items()))


def _median(values: list[float]) -> float:
    return statistics.median(values)


# -- 2. one big export -----------------------------------------------------------------------


@dataclass
class BigResult:
    actor: dict[str, list[float]] = field(default_factory=dict)
    bare: dict[str, list[float]] = field(default_factory=dict)
    inside: dict[str, list[float]] = field(default_factory=dict)  # JobStarted -> JobCompleted
    actor_cpu: dict[str, list[float]] = field(default_factory=dict)  # process CPU seconds
    bare_cpu: dict[str, list[float]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)


def run_big(args: argparse.Namespace, cache: Path) -> BigResult:
    data_dir = fresh_dir("jobs-big")
    store_path = data_dir / "silver.db"
    try:
        os.link(cache, store_path)  # the same file, without a copy
    except OSError:
        shutil.copyfile(cache, store_path)
    bare_out = data_dir / "bare.out"
    result = BigResult()
    with ExportSystem.open(
        data_dir,
        max_concurrent_exports=4,
        catch_up_interval_seconds=args.catch_up,
        progress_interval_seconds=1.0,
        max_records=max(2_000_000, args.rows),
    ) as system:
        for fmt in (ExportFormat.CSV, ExportFormat.JSONL):
            # Warm the page cache so the first timed run is not the one paying for it.
            export_to_file(store_path, BIG_DATASET, fmt, bare_out, limit=args.rows)
            bare_out.unlink()
            for key in ("actor", "bare", "inside", "actor_cpu", "bare_cpu"):
                getattr(result, key)[fmt.value] = []
            for run in range(args.repeat):
                # Alternate which path goes first, so neither always follows the other's
                # file deletion (page cache, disk) or a burst of load from elsewhere.
                order = ("bare", "actor") if run % 2 == 0 else ("actor", "bare")
                for path_kind in order:
                    if path_kind == "bare":
                        bare = _timed_bare(result, store_path, fmt, bare_out, args.rows)
                    else:
                        view = _timed_actor(result, system, fmt)
                _check(result, fmt, view, bare, args.rows)
                path = system.file_path(view)
                if path is not None:
                    path.unlink(missing_ok=True)  # keep the disk and page cache as they were
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


def _timed_bare(
    result: BigResult, store_path: Path, fmt: ExportFormat, out: Path, rows: int
) -> ExportResult:
    w0, c0 = time.perf_counter(), time.process_time()
    bare = export_to_file(store_path, BIG_DATASET, fmt, out, limit=rows)
    result.bare[fmt.value].append(time.perf_counter() - w0)
    result.bare_cpu[fmt.value].append(time.process_time() - c0)
    out.unlink()
    return bare


def _timed_actor(result: BigResult, system: ExportSystem, fmt: ExportFormat) -> JobView:
    w0, c0 = time.perf_counter(), time.process_time()
    job = system.submit(ExportRequest(BIG_DATASET, fmt))
    view = system.wait(job.job_id, timeout=WAIT_TIMEOUT)
    result.actor[fmt.value].append(time.perf_counter() - w0)
    result.actor_cpu[fmt.value].append(time.process_time() - c0)
    result.inside[fmt.value].append(_inside_seconds(system, job.job_id))
    return view


def _check(
    result: BigResult, fmt: ExportFormat, view: JobView, bare: ExportResult, rows: int
) -> None:
    if view.status is not JobStatus.COMPLETED:
        result.mismatches.append(f"{fmt}: job {view.status}: {view.error}")
    elif (view.rows, view.sha256, view.truncated) != (bare.rows, bare.sha256, bare.truncated):
        result.mismatches.append(
            f"{fmt}: actor {view.rows} rows {(view.sha256 or '')[:12]} vs bare "
            f"{bare.rows} rows {bare.sha256[:12]}"
        )
    if view.rows != rows:
        result.mismatches.append(f"{fmt}: {view.rows} rows, not {rows}")


def _inside_seconds(system: ExportSystem, job_id: str) -> float:
    """From JobStarted to JobCompleted as recorded in the log (millisecond timestamps)."""
    times = {e.type: e.recorded_at for e in system.events(job_id)}
    if "JobStarted" not in times or "JobCompleted" not in times:
        return float("nan")
    return (_parse_time(times["JobCompleted"]) - _parse_time(times["JobStarted"])).total_seconds()


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def report_big(rows: int, res: BigResult) -> bool:
    print(f"\n2. one {rows:,}-row {BIG_DATASET} export, actor system vs bare export_to_file")
    print(
        f"   {'path':12} {'best rows/s':>12} {'median rows/s':>14} {'best s':>7} "
        f"{'median s':>8} {'CPU s':>6}"
    )
    ok = not res.mismatches
    for fmt in res.actor:
        for label, times, cpu in (
            (f"bare {fmt}", res.bare[fmt], res.bare_cpu[fmt]),
            (f"actor {fmt}", res.actor[fmt], res.actor_cpu[fmt]),
        ):
            print(
                f"   {label:12} {rows / min(times):>12,.0f} {rows / _median(times):>14,.0f} "
                f"{min(times):>7.3f} {_median(times):>8.3f} {_median(cpu):>6.2f}"
            )
        inside = res.inside[fmt]
        overhead = [a - i for a, i in zip(res.actor[fmt], inside, strict=True)]
        print(
            f"   {'':12} actor: JobStarted->JobCompleted median {_median(inside):.3f} s, "
            f"submit/start/finish overhead median {_median(overhead) * 1e3:.0f} ms"
        )
    print(
        f"   {'ratio actor/bare rows/s':24} {'best':>7} {'median':>7} {'CPU':>6}"
        f"   target >= {TARGET_RATIO}x (verdict on best-of-{len(res.actor['csv'])})"
    )
    for fmt in res.actor:
        best = min(res.bare[fmt]) / min(res.actor[fmt])
        med = _median(res.bare[fmt]) / _median(res.actor[fmt])
        cpu = _median(res.bare_cpu[fmt]) / _median(res.actor_cpu[fmt])
        passed = best >= TARGET_RATIO
        ok = ok and passed
        note = "" if med >= TARGET_RATIO else " (median below target)"
        print(
            f"   {fmt:24} {best:>6.3f}x {med:>6.3f}x {cpu:>5.2f}x   "
            f"{'PASS' if passed else 'FAIL'}{note}"
        )
    for problem in res.mismatches:
        print(f"   MISMATCH: {problem}")
    if not res.mismatches:
        print("   files: actor and bare outputs identical (rows, sha256, truncated) in every run")
    return ok


# -- main ------------------------------------------------------------------------------------


def machine() -> None:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    mem = psutil.virtual_memory().total / 2**30
    print(f"os.cpu_count(): {os.cpu_count()}")
    print(f"CPU: {cpu}; RAM: {mem:.1f} GiB; {platform.platform()}")
    print(
        f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"pykka {metadata.version('pykka')}; psutil {psutil.__version__}"
    )
    print(f"work dir: {WORK} ({_fs_type(WORK)})")


def _fs_type(path: Path) -> str:
    best = None
    for part in psutil.disk_partitions(all=True):
        if str(path).startswith(part.mountpoint) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    return f"{best.fstype} on {best.mountpoint}" if best else "unknown fs"


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--catch-up", type=float, default=1.0, help="catch_up_interval_seconds")
    parser.add_argument("--quick", action="store_true", help="200 jobs, 100k rows")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.rows = min(args.jobs, 200), min(args.rows, 100_000)
    machine()
    WORK.mkdir(parents=True, exist_ok=True)
    print(
        f"jobs: {args.jobs:,}; rows: {args.rows:,}; repeat: {args.repeat}; {load_average()}",
        flush=True,
    )

    small = [run_small(args, i) for i in range(args.repeat)]
    small_ok = report_small(small)
    print(f"   process peak RSS so far (ru_maxrss): {_maxrss_mib():,.0f} MiB", flush=True)

    print(f"   {load_average()}", flush=True)
    cache = build_big(args.rows)
    big = run_big(args, cache)
    big_ok = report_big(args.rows, big)
    print(f"   {load_average()}")
    print(f"\nprocess peak RSS (ru_maxrss): {_maxrss_mib():,.0f} MiB")
    verdict = "PASS" if small_ok and big_ok else "FAIL"
    print(f"overall: {verdict}")
    return 0 if verdict == "PASS" else 1


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
