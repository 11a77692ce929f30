"""The job fold: what each event does to a job's state, as pure functions.

`fold(state, event)` is the one place that knows what an event does to a job; start-up catch-up,
`rebuild`, audit's "as of" and the supervisor's in-memory view all call it. Events of streams
that are not jobs (JOB_EVENT_TYPES says which are) are not its business: callers skip them.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from ..errors import IntegrityError
from ..model import Compression, ExportFormat, JobStatus, JobView
from ..timeutil import expiry
from .types import (
    ALLOWED_FIELDS,
    JobCancelled,
    JobCompleted,
    JobExpired,
    JobFailed,
    JobProgressed,
    JobRequested,
    JobStarted,
    RecordedEvent,
    data_of,
    decode_data,
)

State = dict[str, Any]
Data = dict[str, Any]
Progress = Callable[[int], None]

# Every key of a job's state, with the type its column has.
FIELDS: dict[str, type] = {
    "job_id": str,
    "tenant": str,
    "dataset": str,
    "format": str,
    "compression": str,
    "filters": dict,
    "limit": int,
    "status": str,
    "attempts": int,
    "rows": int,
    "bytes": int,
    "sha256": str,
    "truncated": int,
    "error": str,
    "created_at": str,
    "created_seq": int,
    "started_at": str,
    "finished_at": str,
    "expires_at": str,
    "file_name": str,
    "idempotency_key": str,
    "request_digest": str,
    "owner": str,
    "max_records": int,
    "version": int,
    "last_seq": int,
}
# What the request alone decides never changes, and the job's JobRequested event already holds
# it: the table keeps what changes and what queries filter on, and reads the rest from that
_QUEUED, _RUNNING, _COMPLETED, _FAILED, _CANCELLED, _EXPIRED = (
    s.value
    for s in (
        JobStatus.QUEUED,
        JobStatus.RUNNING,
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
    )
)


def fold(state: State | None, rec: RecordedEvent) -> State:
    """Return the job's new state after `rec`; never mutates `state`."""
    return _step(
        None if state is None else dict(state),
        rec.stream_id,
        rec.seq,
        rec.version,
        rec.recorded_at,
        rec.event.type,
        data_of(rec.event),
    )


def _step(
    state: State | None, job_id: str, seq: int, version: int, at: str, type_: str, e: Data
) -> State:
    """Apply one event to a job's state, in place; a JobRequested makes the state.

    `e` holds the event's fields (`data_of(event)`, or `decode_data` straight from the log).
    Only `fold` (on a copy) and `replay` (on states no one else sees yet) call this: `fold`
    stays pure, and replaying a long log skips building an event and a state copy per row.
    """
    if state is None:
        if type_ != _REQUESTED:
            raise IntegrityError(f"seq {seq}: {type_} for unknown job {job_id}")
        state = _new_job(job_id, e, at, seq)
    else:
        apply = _APPLY.get(type_)
        if apply is None:
            raise IntegrityError(f"seq {seq}: job {job_id} cannot take {type_} (requested twice?)")
        apply(state, e, at)
    state["version"] = version
    state["last_seq"] = seq
    return state


# -- one function per event type: what it does to a job ----------------------------------------


def _new_job(job_id: str, e: Data, at: str, seq: int) -> State:
    state = _NEW_JOB.copy()  # copying a dict of the right shape beats building one
    state["job_id"] = job_id
    state["tenant"] = e["tenant"]
    state["dataset"] = e["dataset"]
    state["format"] = e["format"]
    state["compression"] = e["compression"]
    state["filters"] = dict(e["filters"])  # its own copy: states are never shared
    state["limit"] = e["limit"]
    state["created_at"] = at
    state["created_seq"] = seq  # a stable, unique order for listing newest first
    state["idempotency_key"] = e["idempotency_key"]
    state["request_digest"] = e["request_digest"]
    state["owner"] = e["accepted_by"]
    state["max_records"] = e["max_records"]
    return state


# What a job is before anything has happened to it; every key of FIELDS, in order.
_NEW_JOB: State = dict.fromkeys(FIELDS) | {
    "status": _QUEUED,
    "attempts": 0,
    "rows": 0,
    "truncated": False,
    "version": 0,
    "last_seq": 0,
}


def _started(state: State, e: Data, at: str) -> None:
    state["status"] = _RUNNING
    state["attempts"] = e["attempt"]
    state["started_at"] = at
    state["rows"] = 0
    state["owner"] = e["owner"]
    state["error"] = None  # a new attempt: the last one's failure is history (in the log)


def _progressed(state: State, e: Data, at: str) -> None:
    state["rows"] = e["rows"]


def _completed(state: State, e: Data, at: str) -> None:
    state["status"] = _COMPLETED
    state["rows"] = e["rows"]
    state["bytes"] = e["bytes"]
    state["sha256"] = e["sha256"]
    state["truncated"] = e["truncated"]
    state["file_name"] = e["file_name"]
    state["finished_at"] = at
    state["expires_at"] = expiry(at, e["retention_seconds"])
    state["error"] = None


def _failed(state: State, e: Data, at: str) -> None:
    state["error"] = e["error"]
    state["attempts"] = max(state["attempts"], e["attempt"])
    if e["will_retry"]:
        state["status"] = _QUEUED
        state["rows"] = 0
    else:
        state["status"] = _FAILED
        state["finished_at"] = at
        state["expires_at"] = expiry(at, e["retention_seconds"])


def _cancelled(state: State, e: Data, at: str) -> None:
    state["status"] = _CANCELLED
    state["finished_at"] = at
    state["expires_at"] = expiry(at, e["retention_seconds"])


def _expired(state: State, e: Data, at: str) -> None:
    state["status"] = _EXPIRED


_REQUESTED = JobRequested.type
_APPLY: dict[str, Callable[[State, Data, str], None]] = {
    JobStarted.type: _started,
    JobProgressed.type: _progressed,
    JobCompleted.type: _completed,
    JobFailed.type: _failed,
    JobCancelled.type: _cancelled,
    JobExpired.type: _expired,
}
# For replay: each type's step on an existing job (None: JobRequested makes one) and its fields.
JOB_EVENT_TYPES = frozenset({_REQUESTED, *_APPLY})
_DISPATCH = {t: (_APPLY.get(t), fields) for t, fields in ALLOWED_FIELDS.items()}
_UNKNOWN = (None, None)


def is_job_event(rec: RecordedEvent) -> bool:
    """True for the events the job fold knows (other streams' events are someone else's)."""
    return rec.event.type in JOB_EVENT_TYPES


def fold_all(states: dict[str, State], records: Iterable[RecordedEvent]) -> int:
    """Fold many events into `states` (keyed by job id); return the last seq seen."""
    last = 0
    for rec in records:
        states[rec.stream_id] = fold(states.get(rec.stream_id), rec)
        last = rec.seq
    return last


def replay(
    batches: Iterable[list[tuple]], progress: Progress | None = None
) -> tuple[dict[str, State], int, int]:
    """Fold stored rows from nothing; return (states, last seq, count). The rebuild path.

    `batches` are lists of rows as `iter_batches(with_hash=False)` yields them; each row goes
    through the same steps as `fold`, as the checked field dict `decode_data` makes of it.
    """
    with cyclic_gc_paused():
        return _replay(batches, progress)


def _replay(
    batches: Iterable[list[tuple]], progress: Progress | None
) -> tuple[dict[str, State], int, int]:
    states: dict[str, State] = {}
    get = states.get
    dispatch = _DISPATCH.get
    loads = orjson.loads
    last = count = 0
    for rows in batches:
        for last, job_id, version, type_, data, at in rows:
            # The hot path, inlined: one lookup gives the type's step and exact field names.
            # A stored event whose fields are exactly those is used as decoded; anything else
            # (defaults to fill, an unknown type, a broken row) goes through decode_data,
            # which fills in or raises.
            step, fields = dispatch(type_, _UNKNOWN)
            try:
                e = loads(data)
            except orjson.JSONDecodeError:
                e = None
            if type(e) is not dict or e.keys() != fields:
                e = decode_data(type_, data)
            state = get(job_id)
            if state is not None and step is not None:
                step(state, e, at)
                state["version"] = version
                state["last_seq"] = last
            else:  # a new job, or an event that does not fit: _step says what is wrong
                states[job_id] = _step(state, job_id, last, version, at, type_, e)
        count += len(rows)
        if progress is not None:
            progress(count)
    return states, last, count


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a replay (or a load) builds its states.

    A replay allocates a dict per job and per event and makes no cycles, so the collector's
    passes over a heap that only grows find nothing; they cost about a tenth of a rebuild.
    Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def fresh_states(records: Iterable[RecordedEvent]) -> tuple[dict[str, State], int]:
    """Fold decoded events from nothing: what verify compares the tables against, and audit's
    state as of a point."""
    states: dict[str, State] = {}
    last = fold_all(states, records)
    return states, last


def to_view(state: State) -> JobView:
    """The typed JobView of a state (or of a row read back from the views table)."""
    return JobView(
        job_id=state["job_id"],
        dataset=state["dataset"],
        format=ExportFormat(state["format"]),
        compression=Compression(state["compression"]) if state["compression"] else None,
        filters=dict(state["filters"]),
        limit=state["limit"],
        status=JobStatus(state["status"]),
        attempts=state["attempts"],
        rows=state["rows"],
        bytes=state["bytes"],
        sha256=state["sha256"],
        truncated=bool(state["truncated"]),
        error=state["error"],
        created_at=state["created_at"],
        started_at=state["started_at"],
        finished_at=state["finished_at"],
        expires_at=state["expires_at"],
        tenant=state["tenant"],
        file_name=state["file_name"],
        idempotency_key=state["idempotency_key"],
        request_digest=state["request_digest"],
        version=state["version"],
        owner=state["owner"],
        max_records=state["max_records"],
    )


def _normalise(state: State) -> State:
    """A state as it reads back from SQLite (booleans stored as 0/1)."""
    out = dict(state)
    out["truncated"] = int(bool(out["truncated"]))
    return out


def normalised(states: dict[str, State]) -> dict[str, State]:
    return {k: _normalise(v) for k, v in states.items()}
