"""Jobs/s of one `serve` node against three on one PostgreSQL event log (SPEC §8): the same
server, the same run, the same job mix; and the database's own durable commit rate beside it.

    .venv/bin/python bench/nodes.py [--small-jobs 300] [--large-jobs 24] [--clients 8]
                                    [--nodes 3] [--repeat 2] [--mix both|small|large]
                                    [--large-rows 30000]
                                    [--commit-seconds 2] [--url postgresql://...]

Two mixes:
- `small`: exports of 20 rows, so a job costs little more than its appends (request, start,
  completion: one durable transaction each, under the log's one table lock): the log bounds it;
- `large`: exports of `--large-rows` (30,000) rows (CSV, gzip every other one): the export's
  CPU bounds it.

Each run gets a fresh database and N real `silverexport serve` processes on 127.0.0.1
(tests/reliability/multinode.py's Cluster: a data dir each, one shared export directory, the
settings' defaults otherwise, so 4 export slots per node). `--clients` threads submit the mix
over the nodes in turn, as fast as they are answered; the run ends when every job's
JobCompleted is in the log. Jobs/s and appends/s are read from the log itself: its events
between the first JobRequested and the last JobCompleted, by their recorded_at. Runs are taken
in turns (1, 3, 1, 3 nodes ...), each mix's best counts. Meanwhile pg_locks is sampled every
20 ms: the share of the time an append held the log's table lock, and how many waited for it,
say whether the single ordered append is what bounds the run; what the holder's server process
was doing (waiting for the node's next statement, flushing the WAL, executing) says why.

The commit rate is one-row INSERT transactions on a table of their own, on the same server,
from 1 and from 4 connections at once: the ceiling under any ordered, durable append.

The load generator and every node share this machine's cores (the report gives the count and
the load average), so the ratio says what more processes buy here, not on more machines.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from benchkit import load_average, machine, make_parser
from pg_server import Databases  # fresh databases on one server

from silverexport.silver.store import SilverStore
from tests.actors.conftest import transfer_rows  # tests/: the cluster harness and row maker
from tests.reliability.multinode import Cluster
from tests.reliability.serve_process import Client

SMALL_ROWS, LARGE_ROWS = 20, 30_000
DEADLINE = 600.0  # seconds for one run's jobs to complete


def small_mix(n: int) -> list[dict[str, Any]]:
    return [
        {"dataset": "token_transfers", "format": ("csv", "jsonl")[i % 2], "target_id": "small"}
        for i in range(n)
    ]


def large_mix(n: int) -> list[dict[str, Any]]:
    return [
        {"dataset": "token_transfers", "format": "csv", "target_id": "large"}
        | ({"compression": "gzip"} if i % 2 else {})
        for i in range(n)
    ]


def fill(silver: Path, large_rows: int) -> None:
    store = SilverStore(silver)
    try:
        for start in range(0, large_rows, 10_000):
            n = min(10_000, large_rows - start)
            store.ingest("token_transfers", transfer_rows(n, target="large", start=start))
        store.ingest("token_transfers", transfer_rows(SMALL_ROWS, target="small", start=large_rows))
    finally:
        store.close()


@dataclass
class Run:
    nodes: int
    jobs: int
    seconds: float  # first JobRequested to last JobCompleted, by the log's clocks
    events: int  # appended in that window
    owners: int  # distinct processes that started jobs
    load: float  # 1-minute load average at the end
    lock_held: float  # share of samples in which an append held the log's table lock
    waiting: float  # appends waiting for it, on average over the samples
    holder: dict[str, float]  # what the holder was doing, shares of the samples it held it

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds

    @property
    def appends_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def hold_ms(self) -> float:
        """The append lock's time held per appended event (most appends carry one)."""
        return 1000 * self.lock_held / self.appends_per_s


def submit_all(urls: list[str], bodies: list[dict[str, Any]], clients: int) -> None:
    """`clients` threads, each job to the next node in turn; every answer must be 202."""
    order = itertools.count()
    errors: list[str] = []

    def work() -> None:
        conns = [Client(url) for url in urls]
        try:
            while (i := next(order)) < len(bodies) and not errors:
                status, body = conns[i % len(urls)].json("POST", "/v1/export/dataset", bodies[i])
                if status != 202:
                    errors.append(f"job {i}: {status} {body}")
        finally:
            for conn in conns:
                conn.close()

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"a submission was refused: {errors[0]}")


def wait_completed(url: str, jobs: int) -> None:
    deadline = time.monotonic() + DEADLINE
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            done, failed = conn.execute(
                "SELECT count(*) FILTER (WHERE type = 'JobCompleted'),"
                " count(*) FILTER (WHERE type = 'JobFailed') FROM events"
            ).fetchone()
            if failed:
                raise SystemExit(f"{failed} attempts failed: see the nodes' logs")
            if done >= jobs:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {jobs} jobs completed in {DEADLINE} s")
            time.sleep(0.05)  # polling the log for the last completion


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class LockSampler(threading.Thread):
    """Samples pg_locks and pg_stat_activity every 20 ms: is the append lock (LOCK TABLE
    events IN EXCLUSIVE MODE) held, how many appends wait for it, and what its holder is doing.
    Held nearly always, with appends queued behind it, means the single ordered append bounds
    the run; the holder's state says whether the database (executing, flushing the WAL) or the
    node (the server waits for the client's next statement) makes it last."""

    STATES = ("node's turn", "WAL flush", "executing", "other")

    def __init__(self, url: str):
        super().__init__(name="lock-sampler", daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.samples = self.held = self.waiting = 0
        self.holder: Counter[str] = Counter()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(0.02):
                waiting, state, event = conn.execute(
                    "SELECT count(*) FILTER (WHERE NOT l.granted),"
                    " max(a.state) FILTER (WHERE l.granted),"
                    " max(a.wait_event) FILTER (WHERE l.granted)"
                    " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.mode = 'ExclusiveLock' AND l.relation = to_regclass('events')"
                ).fetchone()
                self.samples += 1
                self.waiting += waiting
                if state is not None:
                    self.held += 1
                    self.holder[self._state(state, event)] += 1

    @staticmethod
    def _state(state: str, event: str | None) -> str:
        if state.startswith("idle in transaction"):
            return "node's turn"
        if event and event.startswith("WAL"):
            return "WAL flush"
        return "executing" if event is None else "other"

    def result(self) -> tuple[float, float, dict[str, float]]:
        self.stop.set()
        self.join()
        n, held = max(self.samples, 1), max(self.held, 1)
        return self.held / n, self.waiting / n, {k: self.holder[k] / held for k in self.STATES}


def measured(url: str, nodes: int, jobs: int, lock: tuple) -> Run:
    with psycopg.connect(url, autocommit=True) as conn:
        first, last = conn.execute(
            "SELECT min(recorded_at) FILTER (WHERE type = 'JobRequested'),"
            " max(recorded_at) FILTER (WHERE type = 'JobCompleted') FROM events"
        ).fetchone()
        events = conn.execute(
            "SELECT count(*) FROM events WHERE recorded_at BETWEEN %s AND %s", (first, last)
        ).fetchone()[0]
        owners = conn.execute(
            "SELECT count(DISTINCT data::jsonb->>'owner') FROM events WHERE type = 'JobStarted'"
        ).fetchone()[0]
    return Run(nodes, jobs, _at(last) - _at(first), events, owners, os.getloadavg()[0], *lock)


def run(url: str, root: Path, silver: Path, nodes: int, bodies: list[dict], clients: int) -> Run:
    cluster = Cluster(
        root,
        url,
        lease_seconds=15.0,  # the settings' defaults, not the tests' fast ones
        catch_up_seconds=1.0,
        env={"SILVEREXPORT_PROGRESS_INTERVAL_SECONDS": "1.0"},
    )
    cluster.silver.write_bytes(silver.read_bytes())
    try:
        started = cluster.start_all([f"n{i}" for i in range(nodes)])
        sampler = LockSampler(url)
        sampler.start()
        try:
            submit_all([node.url for node in started], bodies, clients)
            wait_completed(url, len(bodies))
        finally:
            lock = sampler.result()
    finally:
        cluster.close()
    return measured(url, nodes, len(bodies), lock)


def commit_rate(url: str, connections: int, seconds: float) -> float:
    """Durable one-row INSERT transactions per second from `connections` at once."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS commit_probe (n BIGINT, at TIMESTAMPTZ)")
    counts = [0] * connections
    stop = time.monotonic() + seconds

    def work(i: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < stop:
                conn.execute("INSERT INTO commit_probe VALUES (%s, now())", (i,))
                counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(connections)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def shares(holder: dict[str, float]) -> str:
    return ", ".join(f"{state} {share:.0%}" for state, share in holder.items())


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--small-jobs", type=int, default=300)
    parser.add_argument("--large-jobs", type=int, default=24)
    parser.add_argument("--clients", type=int, default=8, help="submitting threads")
    parser.add_argument("--nodes", type=int, default=3, help="the larger cluster")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each size; best counts")
    parser.add_argument("--mix", choices=("both", "small", "large"), default="both")
    parser.add_argument("--large-rows", type=int, default=LARGE_ROWS, help="rows a large job")
    parser.add_argument("--commit-seconds", type=float, default=2.0, help="commit-rate probe")
    parser.add_argument("--url", default=None, help="an existing server (a maintenance db URL)")
    args = parser.parse_args(argv)

    print(f"{machine()}; {load_average()}")
    mixes = {
        f"small ({SMALL_ROWS} rows a job, {args.small_jobs} jobs)": small_mix(args.small_jobs),
        f"large ({args.large_rows:,} rows a job, {args.large_jobs} jobs)": large_mix(
            args.large_jobs
        ),
    }
    if args.mix != "both":
        mixes = {label: bodies for label, bodies in mixes.items() if label.startswith(args.mix)}
    dbs = Databases(args.url)
    work = Path(tempfile.mkdtemp(prefix="silverexport-bench-nodes-"))
    silver = work / "silver.db"
    best: dict[tuple[str, int], Run] = {}
    try:
        fill(silver, args.large_rows)
        print(dbs.describe())
        commits = {n: commit_rate(dbs.fresh(), n, args.commit_seconds) for n in (1, 4)}
        for c, rate in commits.items():
            print(f"database commit rate, {c} connection(s): {rate:,.0f} durable commits/s")
        for label, bodies in mixes.items():
            for rep in range(args.repeat):
                for nodes in (1, args.nodes):
                    root = work / f"{len(best)}-{rep}-{nodes}"
                    r = run(dbs.fresh(), root, silver, nodes, bodies, args.clients)
                    print(
                        f"  {label}, {nodes} node(s): {r.jobs_per_s:,.1f} jobs/s, "
                        f"{r.appends_per_s:,.0f} appends/s in the log, append lock held "
                        f"{r.lock_held:.0%} of the time ({r.hold_ms:.1f} ms an event, "
                        f"{r.waiting:.1f} waiting), jobs "
                        f"started by {r.owners} process(es), load {r.load:.2f}"
                    )
                    print(f"    while held: {shares(r.holder)}")
                    key = (label, nodes)
                    if key not in best or r.jobs_per_s > best[key].jobs_per_s:
                        best[key] = r
    finally:
        dbs.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"best of {args.repeat}; {load_average()}")
    for label in mixes:
        one, many = best[(label, 1)], best[(label, args.nodes)]
        print(
            f"{label}: 1 node {one.jobs_per_s:,.1f} jobs/s ({one.appends_per_s:,.0f} appends/s), "
            f"{args.nodes} nodes {many.jobs_per_s:,.1f} jobs/s ({many.appends_per_s:,.0f} "
            f"appends/s): ratio {many.jobs_per_s / one.jobs_per_s:.2f}x; append lock held "
            f"{one.lock_held:.0%} / {many.lock_held:.0%} of the time, "
            f"{one.hold_ms:.1f} / {many.hold_ms:.1f} ms an event"
        )
        print(f"  while held, 1 node: {shares(one.holder)}; {args.nodes}: {shares(many.holder)}")
    return 0  # a benchmark reports; it does not fail the build


if __name__ == "__main__":
    sys.exit(main())
