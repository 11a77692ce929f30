"""Event log benchmark on PostgreSQL: durable group-commit appends against the `eventsourcing`
library's PostgreSQL recorder, on the same server in the same run; and the append lock
(LOCK TABLE ... IN EXCLUSIVE MODE against pg_advisory_xact_lock), alone and contended.

    .venv/bin/python bench/eventlog_pg.py [--jobs 2000] [--url postgresql://...]

Without --url it starts a throwaway PostgreSQL 15 on 127.0.0.1 (fsync on, as the tests do).
Each side gets a fresh database. Target: our appends >= 3x its append rate.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

from benchkit import machine, make_parser
from eventlog import (  # the workload and the eventsourcing side of bench/eventlog.py
    Batches,
    eventsourcing_types,
    save_with_eventsourcing,
    ticks,
)
from pg_server import Databases  # fresh databases on one server

from silverexport.events.log import Append
from silverexport.events.postgres_log import PostgresEventLog
from silverexport.events.postgres_views import PostgresViewTables
from silverexport.events.types import Event, JobRequested

APPEND_TARGET = 3.0


def _log(url: str, lock: str, views: bool) -> PostgresEventLog:
    log = PostgresEventLog(url, lock=lock)
    if views:  # as a node runs it: the job views written in each append's transaction
        log.projector = PostgresViewTables(log)
    return log


def append_ours(url: str, batches: Batches, lock: str, views: bool = False) -> float:
    """Events/s of one writer appending every batch as one group commit."""
    log = _log(url, lock, views)
    total = sum(len(b) for b in batches)
    t0 = time.perf_counter()
    for batch in batches:
        log.append_batch([Append(stream, version, (event,)) for stream, version, event in batch])
    seconds = time.perf_counter() - t0
    assert log.count() == total and log.first_bad_seq() is None
    log.close()
    return total / seconds


def append_contended(
    url: str, batches: Batches, lock: str, writers: int, views: bool = False
) -> float:
    """Events/s of `writers` connections each appending the whole workload at once, on
    streams (and idempotency keys) of their own, so only the append lock is shared."""
    _log(url, lock, views).close()
    logs = [_log(url, lock, views) for _ in range(writers)]
    work = [[[_own(w, *item) for item in batch] for batch in batches] for w in range(writers)]
    start = threading.Barrier(writers + 1)

    def run(w: int) -> None:
        start.wait()
        for appends in work[w]:
            logs[w].append_batch(appends)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    total = writers * sum(len(b) for b in batches)
    assert logs[0].count() == total and logs[0].first_bad_seq() is None
    for log in logs:
        log.close()
    return total / seconds


def _own(writer: int, stream: str, version: int, event: Event) -> Append:
    if isinstance(event, JobRequested):
        event = replace(event, idempotency_key=f"w{writer}-{event.idempotency_key}")
    return Append(f"w{writer}-{stream}", version, (event,))


def append_eventsourcing(url: str, batches: Batches, *, per_tick: bool) -> float:
    """Its appends through its PostgreSQL recorder (which takes LOCK TABLE ... EXCLUSIVE per
    insert): one save per event, or with `per_tick` one save of every job a tick touched."""
    parts = urlsplit(url)
    jobs_app, _ = eventsourcing_types()
    app = jobs_app(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": parts.username or "postgres",
            "POSTGRES_PASSWORD": parts.password or "",
            "CREATE_TABLE": "y",
        }
    )
    t0 = time.perf_counter()
    stored = save_with_eventsourcing(app, batches, per_tick=per_tick)
    seconds = time.perf_counter() - t0
    app.close()
    return stored / seconds


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=2_000)
    parser.add_argument("--interleave", type=int, default=100, help="jobs running at once")
    parser.add_argument("--writers", type=int, default=4, help="contended writers")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side; best counts")
    parser.add_argument("--url", default=None, help="an existing server (a maintenance db URL)")
    parser.add_argument(
        "--ours-only", action="store_true", help="skip the eventsourcing side (the slow one)"
    )
    args = parser.parse_args(argv)

    batches = list(ticks(args.jobs, args.interleave))
    total = sum(len(b) for b in batches)
    print(machine())
    print(
        f"{args.jobs} jobs x 6 events = {total} events, {args.interleave} interleaved, "
        f"{len(batches)} group commits (avg {total / len(batches):.0f} events each)"
    )
    dbs = Databases(args.url)
    try:
        print(dbs.describe())
        rates: dict[str, float] = {}
        # Taken in turns, each on a fresh database, so both meet the same moments of the box.
        for _ in range(args.repeat):
            for lock in ("table", "advisory"):
                rate = append_ours(dbs.fresh(), batches, lock)
                rates[f"ours/{lock}"] = max(rates.get(f"ours/{lock}", 0), rate)
                rate = append_contended(dbs.fresh(), batches, lock, args.writers)
                key = f"ours/{lock}/{args.writers} writers"
                rates[key] = max(rates.get(key, 0), rate)
            for name, run in (
                ("ours/table/views", lambda: append_ours(dbs.fresh(), batches, "table", True)),
                (
                    f"ours/table/views/{args.writers} writers",
                    lambda: append_contended(dbs.fresh(), batches, "table", args.writers, True),
                ),
            ):
                rates[name] = max(rates.get(name, 0), run())
            for per_tick in () if args.ours_only else (False, True):
                key = f"eventsourcing/{'save per tick' if per_tick else 'save per event'}"
                rate = append_eventsourcing(dbs.fresh(), batches, per_tick=per_tick)
                rates[key] = max(rates.get(key, 0), rate)
    finally:
        dbs.close()
    for name, rate in rates.items():
        print(f"{name}: append {rate:,.0f} events/s")
    crowd = f"{args.writers} writers"
    alone = rates["ours/advisory"] / rates["ours/table"]
    contended = rates[f"ours/advisory/{crowd}"] / rates[f"ours/table/{crowd}"]
    print(f"advisory/table lock: alone {alone:.2f}x, {crowd} {contended:.2f}x")
    if args.ours_only:
        return 0
    ratio = rates["ours/table"] / rates["eventsourcing/save per event"]
    print(
        f"append ratio ours(table lock)/eventsourcing(save per event) {ratio:.1f}x "
        f"(target {APPEND_TARGET:.0f}x): {'OK' if ratio >= APPEND_TARGET else 'MISSED'}; "
        f"vs its save per tick {rates['ours/table'] / rates['eventsourcing/save per tick']:.1f}x"
    )
    return 0  # a benchmark reports; it does not fail the build


if __name__ == "__main__":
    sys.exit(main())
