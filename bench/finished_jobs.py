"""Memory and start-up against the number of finished jobs in the log (SPEC §5).

    .venv/bin/python bench/finished_jobs.py [--small 2000] [--large 100000] [--repeat 3]

Two data dirs, one with `--small` and one with `--large` completed jobs (plus the same few
queued ones of a live process), are built once under bench/.work/ by appending their events
straight to the log in big batches (the views kept in step, as any writer does). Then, in a
fresh process per run and per data dir, a serving system is opened and measured:

- start-up: `ExportSystem.open` on the data dir, wall time;
- RSS: the process's resident memory after the open, less what it was after the imports;
- status of old jobs: `GET /v1/export/jobs/{id}` of 300 old jobs, each read for the first
  time (from the persisted views), then of the very first job 300 times (from memory once
  read), through a real aiohttp server on 127.0.0.1 and a keep-alive client, medians;
- the same through the Python API (`system.status`): 1,000 first reads, then 2,000 of one job.

Each figure is the median of `--repeat` runs; the verdict is the large/small ratio measured in
this run. Target: RSS and start-up flat (ratio within noise, about 1.0-1.3x), the old job's
status just as fast.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
from aiohttp import web
from benchkit import WORK, clean_env, make_parser

from silverexport import ExportSystem
from silverexport.events.log import Append
from silverexport.events.sqlite_log import SqliteEventLog
from silverexport.events.types import JobCompleted, JobRequested, JobStarted
from silverexport.events.views import ViewTables
from silverexport.http import make_app
from silverexport.model import ExportRequest
from silverexport.validation import check_request

TENANT, KEY = "old", "k1"
OWNER = "bench-host-1-alive"  # the bench holds its lock: another server, running
QUEUED = 20  # the same active set in both data dirs
BATCH = 5_000  # jobs per append transaction
FIRST_READS = 1_000  # old jobs each probe reads once through the API (then 330 over HTTP)


def _job_events(i: int, digest: str, *, finished: bool) -> list:
    events: list = [
        JobRequested(
            tenant=TENANT,
            dataset="token_transfers",
            format="csv",
            filters={"target_id": "t1", "network": None, "from": None, "to": None},
            limit=None,
            compression=None,
            idempotency_key=f"key-{i}",
            request_digest=digest,
            max_records=100_000,
            accepted_by=OWNER,
        )
    ]
    if finished:
        events += [
            JobStarted(attempt=1, owner=OWNER),
            JobCompleted(
                rows=70,
                bytes=9_000,
                sha256="0" * 64,
                truncated=False,
                file_name=f"{i:032x}.csv",
                retention_seconds=10 * 365 * 86_400.0,  # none expires during the bench
            ),
        ]
    return events


def build(jobs: int) -> Path:
    """A data dir with `jobs` completed jobs and QUEUED queued ones; cached between runs."""
    data_dir = WORK / f"finished-{jobs}"
    done = data_dir / "built"
    if done.exists():
        return data_dir
    if data_dir.exists():
        for path in sorted(data_dir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    data_dir.mkdir(parents=True, exist_ok=True)
    digest = check_request(
        ExportRequest(dataset="token_transfers", format="csv", target_id="t1"), max_records=100_000
    ).digest
    log = SqliteEventLog(data_dir / "events.db")
    log.projector = ViewTables(log.db)
    started = time.perf_counter()
    total = jobs + QUEUED
    for first in range(0, total, BATCH):
        log.append_batch(
            [
                Append(f"{i:032x}", 0, _job_events(i, digest, finished=i < jobs))
                for i in range(first, min(total, first + BATCH))
            ]
        )
    log.close()
    done.write_text(str(jobs))
    print(f"  built {jobs:,} finished jobs in {time.perf_counter() - started:.1f} s", flush=True)
    return data_dir


def _hold_owner_lock(data_dir: Path) -> int:
    (data_dir / "owners").mkdir(exist_ok=True)
    fd = os.open(data_dir / "owners" / f"{OWNER}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def probe(data_dir: Path) -> dict:
    """One fresh process's figures (run as `--probe DIR`), measured after the imports."""
    proc = psutil.Process()
    rss_before = proc.memory_info().rss
    started = time.perf_counter()
    system = ExportSystem.open(data_dir, api_keys=f"{TENANT}:{KEY}")
    startup = time.perf_counter() - started
    rss = proc.memory_info().rss - rss_before
    try:
        return {"startup_s": startup, "rss_mb": rss / 2**20, **_reads(system, data_dir)}
    finally:
        system.close()


def _reads(system, data_dir: Path) -> dict:
    """Old jobs' status through the API and over HTTP, first reads and repeated ones."""
    finished = int((data_dir / "built").read_text())
    api_reads = min(FIRST_READS, finished // 2)  # tiny smoke runs have only a few old jobs
    http_reads = min(330, finished - api_reads - 1)
    warm = min(30, http_reads // 2)  # the first few warm the connection and the executor
    old = f"{0:032x}"

    def timed(job_ids) -> list[float]:
        times = []
        for job_id in job_ids:
            t = time.perf_counter()
            system.status(job_id, tenant=TENANT)
            times.append(time.perf_counter() - t)
        return times

    # Old jobs read for the first time come from the persisted views; then from memory.
    api_first = timed(f"{i:032x}" for i in range(1, api_reads + 1))
    api = timed([old] * 2_000)

    async def http() -> list[float]:
        runner = web.AppRunner(make_app(system), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}/v1/export/jobs/"
        first = [f"{i:032x}" for i in range(api_reads + 1, api_reads + 1 + http_reads)]
        times: dict[str, list[float]] = {"first": [], "again": []}
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as client:
            for kind, job_ids in (("first", first), ("again", [old] * http_reads)):
                for i, job_id in enumerate(job_ids):
                    t = time.perf_counter()
                    async with client.get(base + job_id) as resp:
                        assert resp.status == 200, await resp.text()
                        await resp.read()
                    if i >= warm:
                        times[kind].append(time.perf_counter() - t)
        await runner.cleanup()
        return times

    gets = asyncio.run(http())
    return {
        "rss_total_mb": psutil.Process().memory_info().rss / 2**20,
        "api_first_us": statistics.median(api_first) * 1e6,
        "api_status_us": statistics.median(api) * 1e6,
        "http_first_us": statistics.median(gets["first"]) * 1e6,
        "http_get_us": statistics.median(gets["again"]) * 1e6,
    }


def run_probe(data_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--probe", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=900,  # a probe that hangs fails the bench instead of stalling it
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe)))
        return
    print(
        f"os.cpu_count(): {os.cpu_count()}; Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version}; {platform.platform()}"
    )
    dirs = {n: build(n) for n in (args.small, args.large)}
    # The queued jobs' process is alive (this one holds its lock), as another server would be:
    # each probe opens a serving system that holds them but leaves them to their owner.
    locks = [_hold_owner_lock(d) for d in dirs.values()]
    runs: dict[int, list[dict]] = {n: [] for n in dirs}
    for _ in range(args.repeat):  # interleaved, so drifting load hits both alike
        for n, data_dir in dirs.items():
            runs[n].append(run_probe(data_dir))
    for fd in locks:
        os.close(fd)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in runs.items()}
    small, large = med[args.small], med[args.large]
    rows = [
        ("start-up (ExportSystem.open)", "startup_s", 1000, "ms"),
        ("RSS grown by the open", "rss_mb", 1, "MB"),
        ("RSS of the process at the end", "rss_total_mb", 1, "MB"),
        ("GET old job, first read (HTTP)", "http_first_us", 1, "us"),
        ("GET old job, again (HTTP, p50)", "http_get_us", 1, "us"),
        ("status old job, first (API)", "api_first_us", 1, "us"),
        ("status old job, again (API)", "api_status_us", 1, "us"),
    ]
    print(f"\nmedian of {args.repeat} fresh processes per data dir")
    print(f"{'':32} {args.small:>12,} {args.large:>12,}   ratio")
    for label, key, scale, unit in rows:
        a, b = small[key] * scale, large[key] * scale
        print(f"{label:32} {a:>9.1f} {unit:<2} {b:>9.1f} {unit:<2}  {b / a:5.2f}x")


if __name__ == "__main__":
    main()
