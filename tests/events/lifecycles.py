"""Valid job lifecycles and interleaved appends of them, shared by the event tests."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterable

from silverexport.events.log import GENESIS_HASH, Append, EventLog, chain_hash
from silverexport.events.types import (
    Event,
    JobCancelled,
    JobCompleted,
    JobExpired,
    JobFailed,
    JobProgressed,
    JobRequested,
    JobStarted,
    encode_data,
)

Choose = Callable[[int], int]  # picks an index in range(n)

# What may follow each status; "stop" leaves the job where it is.
MOVES: dict[str | None, tuple[str, ...]] = {
    None: ("request",),
    "queued": ("start", "cancel", "stop"),
    "running": ("progress", "complete", "retry", "fail", "cancel", "stop"),
    "completed": ("expire", "stop"),
    "failed": ("expire", "stop"),
    "cancelled": ("expire", "stop"),
    "expired": ("stop",),
}
AFTER = {
    "request": "queued",
    "start": "running",
    "progress": "running",
    "complete": "completed",
    "retry": "queued",
    "fail": "failed",
    "cancel": "cancelled",
    "expire": "expired",
}
RETENTION = 86_400.0


def requested(n: int, *, tenant: str = "alice", key: str | None = None) -> JobRequested:
    return JobRequested(
        tenant=tenant,
        dataset="token_transfers",
        format="csv" if n % 2 else "jsonl",
        filters={"target_id": f"t{n}", "network": None, "from": None, "to": None},
        limit=None if n % 3 else n,
        compression="gzip" if n % 5 == 0 else None,
        idempotency_key=key,
        request_digest=f"{n:064x}",
    )


def lifecycle(n: int, choose: Choose, max_events: int = 12) -> tuple[list[Event], str]:
    """A valid walk through the job state machine, and the status it ends in."""
    status: str | None = None
    attempt = rows = 0
    events: list[Event] = []
    while len(events) < max_events:
        options = MOVES[status]
        move = options[choose(len(options))]
        if move == "stop":
            break
        if move == "request":
            events.append(requested(n))
        elif move == "start":
            attempt += 1
            events.append(JobStarted(attempt=attempt, owner=f"owner-{attempt}"))
        elif move == "progress":
            rows += 10
            events.append(JobProgressed(rows=rows))
        elif move == "complete":
            events.append(
                JobCompleted(
                    rows=rows,
                    bytes=rows * 7,
                    sha256=f"{n:064x}",
                    truncated=n % 2 == 0,
                    file_name=f"{n}.csv",
                    retention_seconds=RETENTION,
                )
            )
        elif move in ("retry", "fail"):
            retry = move == "retry"
            events.append(
                JobFailed(
                    error=f"boom {attempt}",
                    attempt=attempt,
                    will_retry=retry,
                    retention_seconds=None if retry else RETENTION,
                )
            )
        elif move == "cancel":
            events.append(JobCancelled(reason="asked", retention_seconds=RETENTION))
        elif move == "expire":
            events.append(JobExpired(file_deleted=status == "completed"))
        status = AFTER[move]
    return events, status or "none"


def interleave(
    streams: dict[str, list[Event]], choose: Choose, in_flight: int = 100
) -> Iterable[list[Append]]:
    """Group-commit batches as a supervisor makes them: up to `in_flight` jobs at once, each
    contributing one or two events per tick, each tick cut into batches of random size."""
    pending = iter(streams.items())
    running: dict[str, tuple[list[Event], int]] = {}
    while True:
        while len(running) < in_flight and (nxt := next(pending, None)) is not None:
            running[nxt[0]] = (nxt[1], 0)
        if not running:
            return
        tick: list[Append] = []
        for job_id, (events, done) in list(running.items()):
            take = 1 + choose(2)
            tick.append(Append(job_id, done, events[done : done + take]))
            if done + take >= len(events):
                del running[job_id]
            else:
                running[job_id] = (events, done + take)
        while tick:
            size = 1 + choose(min(len(tick), 50))
            yield tick[:size]
            tick = tick[size:]


def random_log(log: EventLog, jobs: int, seed: int = 7) -> dict[str, str]:
    """Append `jobs` random lifecycles; return each job's final status."""
    rng = random.Random(seed)
    streams, finals = {}, {}
    for n in range(jobs):
        events, final = lifecycle(n, rng.randrange)
        if events:
            streams[f"job-{n:05d}"] = events
            finals[f"job-{n:05d}"] = final
    for batch in interleave(streams, rng.randrange):
        log.append_batch(batch)
    return finals


def drop_guards(path) -> None:
    """What an attacker with file access would do first (raw sqlite3, not our code)."""
    conn = sqlite3.connect(path)
    conn.executescript("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
    conn.close()


def forge(path, rows: list[tuple[str, Event | tuple[str, str], str]]) -> None:
    """Append (stream_id, event or (type, data), recorded_at) rows with a valid chain, at
    chosen times, the way another program could."""
    conn = sqlite3.connect(path)
    last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = last or (0, GENESIS_HASH)
    for stream_id, event, at in rows:
        version = conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM events WHERE stream_id = ?", [stream_id]
        ).fetchone()[0]
        seq += 1
        type_, data = event if isinstance(event, tuple) else (event.type, encode_data(event))
        data = data.decode() if isinstance(data, bytes) else data
        prev = chain_hash(prev, seq, stream_id, version, type_, data, at)
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
            [seq, stream_id, version, type_, data, at, prev],
        )
    conn.commit()
    conn.close()
