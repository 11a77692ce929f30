"""Event log benchmark: durable group-commit appends with the views on, then a full rebuild.

Compares, in the same run, with the `eventsourcing` library on SQLite (one save per event, its
default synchronous=FULL) and its rate of reading back every stored event.

    .venv/bin/python bench/eventlog.py [--jobs 20000] [--interleave 100]

Targets: our appends >= 3x its append rate; our rebuild >= 2x its read-back rate.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from benchkit import machine, make_parser

from silverexport.events.audit import rebuild
from silverexport.events.log import Append
from silverexport.events.sqlite_log import SqliteEventLog
from silverexport.events.types import (
    Event,
    JobCompleted,
    JobExpired,
    JobProgressed,
    JobRequested,
    JobStarted,
    encode_data,
)
from silverexport.events.views import ViewTables

APPEND_TARGET = 3.0
REBUILD_TARGET = 2.0


OWNER = f"bench-host-{os.getpid()}-0123abcd"  # the shape of a process's owner id
# With --wide: a long host name and client keys of 252 characters (255 is the most allowed).
WIDE_OWNER = (
    f"silverexport-7d9f8b6c4-x2x9z.exports.eu-west-1.cluster.internal-{os.getpid()}-0123abcd"
)


def lifecycle(n: int, *, wide: bool = False) -> list[Event]:
    """Six events of one job, as the supervisor writes them.

    Their data averages 130 bytes (a request about 340); `wide` makes it about 180.
    """
    owner = WIDE_OWNER if wide else OWNER
    return [
        JobRequested(
            tenant="tenant-a",
            dataset="token_transfers",
            format="csv",
            filters={
                "target_id": f"0x{n % 97:040x}",
                "network": "ethereum",
                "from": "2026-01-01T00:00:00.000Z",
                "to": "2026-11-01T00:00:00.000Z",
            },
            limit=None,
            compression="gzip",
            idempotency_key=str(uuid.UUID(int=n)) * (7 if wide else 1),
            request_digest=f"{n:064x}",
            max_records=1_000_000,
            accepted_by=owner,
        ),
        JobStarted(attempt=1, owner=owner),
        JobProgressed(rows=50_000),
        JobProgressed(rows=100_000),
        JobCompleted(
            rows=100_000,
            bytes=12_345_678,
            sha256=f"{n:064x}",
            truncated=True,
            file_name=f"token_transfers-{n:032x}.csv",
            retention_seconds=86_400.0,
        ),
        JobExpired(file_deleted=True),
    ]


def ticks(
    jobs: int, interleave: int, max_batch: int | None = None, *, wide: bool = False
) -> Iterator[list[tuple[str, int, Event]]]:
    """What reaches the supervisor together: one event from each of `interleave` running jobs,
    committed in batches of at most `max_batch` events.

    Slots start staggered so that every batch mixes event types; a finished job's slot takes
    the next job. Yields lists of (stream_id, version before the event, event).
    """
    started = 0
    slots: list[tuple[str, list[Event], int] | None] = []
    for i in range(min(interleave, jobs)):
        slots.append((uuid.uuid4().hex, lifecycle(started, wide=wide), -(i % 6)))
        started += 1
    while any(slots):
        batch = []
        for i, slot in enumerate(slots):
            if slot is None:
                continue
            stream, events, pos = slot
            if pos >= 0:
                batch.append((stream, pos, events[pos]))
            pos += 1
            if pos < len(events):
                slots[i] = (stream, events, pos)
            elif started < jobs:
                slots[i] = (uuid.uuid4().hex, lifecycle(started, wide=wide), 0)
                started += 1
            else:
                slots[i] = None
        step = max_batch or len(batch) or 1
        for i in range(0, len(batch), step):
            yield batch[i : i + step]


Batches = list[list[tuple[str, int, Event]]]  # (stream_id, version before, event) per commit


@dataclass
class Side:
    """One side after its appends: its append rate, its timed read-side runs, how to close it."""

    append_rate: float
    runs: dict[str, Callable[[], int]]  # each returns how many events it handled
    close: Callable[[], None]


def append_ours(path: Path, batches: Batches) -> Side:
    """Our appends (group commits, views on); its run rebuilds the views from the log."""
    log = SqliteEventLog(path)
    views = ViewTables(log.db)
    log.projector = views
    total = sum(len(b) for b in batches)
    t0 = time.perf_counter()
    for batch in batches:
        log.append_batch([Append(stream, version, (event,)) for stream, version, event in batch])
    append_s = time.perf_counter() - t0
    return Side(total / append_s, {"rebuild": lambda: rebuild(log, views)}, log.close)


@functools.cache
def eventsourcing_types() -> tuple[type, type]:
    """The `eventsourcing` side: its Application class and a Job aggregate whose events each
    carry one of ours as a dict. Imported when first asked for (--skip-eventsourcing runs
    without the library), and made once, so each class has one topic in its registry."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Job(Aggregate):
        @event("Requested")
        def __init__(self, payload: dict) -> None:
            self.last = payload

        @event("Happened")
        def happened(self, payload: dict) -> None:
            self.last = payload

    class Jobs(Application):
        pass

    return Jobs, Job


def save_with_eventsourcing(app, batches: Batches, *, per_tick: bool = False) -> int:
    """Every event through `app`: one save (one durable transaction) per event, or with
    `per_tick` one save of every job a tick touched. Returns how many events it stored."""
    _, job_type = eventsourcing_types()
    jobs: dict[str, object] = {}
    stored = 0
    for batch in batches:
        touched = []
        for stream, _version, ev in batch:
            job = jobs.get(stream)
            if job is None:
                job = jobs[stream] = job_type(payload=asdict(ev))
            else:
                job.happened(payload=asdict(ev))
            if per_tick:
                touched.append(job)
            else:
                app.save(job)
            stored += 1
            if isinstance(ev, JobExpired):
                del jobs[stream]
        if per_tick:
            app.save(*{id(j): j for j in touched}.values())
    return stored


def append_eventsourcing(path: Path, batches: Batches) -> Side:
    """Its appends (one save per event); its runs read every event back, as domain events
    ("read") and as raw notifications ("raw")."""
    jobs_app, _ = eventsourcing_types()
    app = jobs_app(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    t0 = time.perf_counter()
    stored = save_with_eventsourcing(app, batches)
    append_s = time.perf_counter() - t0
    runs = {
        "read": lambda: _read_back(app, decode=True),
        "raw": lambda: _read_back(app, decode=False),
    }
    return Side(stored / append_s, runs, app.close)


def _read_back(app, *, decode: bool) -> int:
    """Every stored event, in pages, through its recorder (and its mapper, to domain events)."""
    read = 0
    start = 1
    while page := app.recorder.select_notifications(start=start, limit=1000):
        if decode:
            for notification in page:
                app.mapper.to_domain_event(notification)
        read += len(page)
        start = page[-1].id + 1
    return read


def timed(fn: Callable[[], int], expected: int) -> float:
    """Seconds `fn` takes; it must handle `expected` events."""
    t0 = time.perf_counter()
    got = fn()
    elapsed = time.perf_counter() - t0
    assert got == expected, (got, expected)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--interleave", type=int, default=100, help="jobs running at once")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="most events per commit (1: no group commit)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="read-side runs of each side, taken in turns; the best counts (less noise)",
    )
    parser.add_argument(
        "--wide", action="store_true", help="long owner ids and client keys (~180-byte data)"
    )
    parser.add_argument("--skip-eventsourcing", action="store_true")
    args = parser.parse_args(argv)

    batches = list(ticks(args.jobs, args.interleave, args.max_batch, wide=args.wide))
    events = [e for b in batches for _, _, e in b]
    payload = sum(len(encode_data(e)) for e in events) / len(events)
    print(machine())
    print(
        f"{args.jobs} jobs x 6 events = {len(events)} events, {args.interleave} interleaved, "
        f"{len(batches)} group commits (avg {len(events) / len(batches):.0f} events each), "
        f"avg payload {payload:.0f} bytes, synchronous=FULL"
    )
    total = len(events)
    # In the working directory, not /tmp: the disk a data dir would live on, fsyncs and all.
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        sides = [append_ours(Path(tmp) / "events.db", batches)]
        print(f"ours: append {sides[0].append_rate:,.0f} events/s (views on)")
        if not args.skip_eventsourcing:
            sides.append(append_eventsourcing(Path(tmp) / "es.db", batches))
        # Taken in turns, so that both sides meet the same moments of a shared machine.
        runs = {name: fn for side in sides for name, fn in side.runs.items()}
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeat):
            for name, fn in runs.items():
                best[name] = min(best[name], timed(fn, total))
        for side in sides:
            side.close()
    rate = {name: total / seconds for name, seconds in best.items()}
    print(f"ours: rebuild {rate['rebuild']:,.0f} events/s")
    if args.skip_eventsourcing:
        return 0
    ours_append, es_append = (side.append_rate for side in sides)
    print(
        f"eventsourcing: append {es_append:,.0f} events/s, read back {rate['read']:,.0f} events/s "
        f"(as domain events; {rate['raw']:,.0f}/s as raw notifications, "
        f"ours/raw {rate['rebuild'] / rate['raw']:.1f}x)"
    )
    append_ratio = ours_append / es_append
    rebuild_ratio = rate["rebuild"] / rate["read"]
    ok = append_ratio >= APPEND_TARGET and rebuild_ratio >= REBUILD_TARGET
    print(
        f"append ratio {append_ratio:.1f}x (target {APPEND_TARGET:.0f}x), "
        f"rebuild/read ratio {rebuild_ratio:.1f}x (target {REBUILD_TARGET:.0f}x): "
        f"{'OK' if ok else 'MISSED'}"
    )
    return 0  # a benchmark reports; it does not fail the build (`make bench` runs others after)


if __name__ == "__main__":
    sys.exit(main())
