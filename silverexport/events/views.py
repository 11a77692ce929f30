"""JobViews: the job status projection, a pure fold over events, persisted beside the log.

`fold(state, event)` is the one place that knows what an event does to a job; start-up catch-up,
`rebuild`, audit's "as of" and the supervisor's in-memory view all call it.
"""

from __future__ import annotations

import gc
import operator
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

import orjson
import sqlite_utils

from .. import sqlite
from ..errors import IntegrityError, StorageError
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
JOBS_TABLE = "jobs"
CHECKPOINT_TABLE = "view_checkpoint"
CHECKPOINT_NAME = "jobs"
CATCH_UP_CHUNK = 5_000  # events applied per step of a catch-up

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
# event (its seq is the row's key). Rows 40% narrower make every write, and a rebuild, cheaper.
_FROM_REQUEST = (
    *("format", "compression", "filters", "limit"),
    *("idempotency_key", "request_digest", "max_records"),
)
_FROM_EVENT = (*_FROM_REQUEST, "created_at")  # created_at: the event's recorded_at
COLUMNS = tuple(c for c in FIELDS if c not in _FROM_EVENT)  # the table's, in order
_QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)  # "limit" is an SQL keyword
_INSERT = f"INSERT INTO {JOBS_TABLE} ({_QUOTED}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SQL_TYPES = {str: "TEXT", int: "INTEGER"}
_NOT_NULL = {"job_id", "tenant", "status", "version", "last_seq"}
# The rowid is the seq of the job's JobRequested: rows are stored in creation order, which lists
# jobs newest first without an index, lets a rebuild append its rows in order, and finds a job
# by id through the log's own (stream_id, version) index.
_ROWID = "created_seq"
_CREATE_JOBS = (
    f"CREATE TABLE IF NOT EXISTS {JOBS_TABLE} ("
    + ", ".join(
        f'"{c}" {_SQL_TYPES[FIELDS[c]]}{" NOT NULL" if c in _NOT_NULL else ""}'
        + (" PRIMARY KEY" if c == _ROWID else "")
        for c in COLUMNS
    )
    + ")"
)
_SHAPE = tuple((c, int(c == _ROWID)) for c in COLUMNS)  # (name, pk) as PRAGMA table_info says
_CREATE_CHECKPOINT = (
    f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (name TEXT PRIMARY KEY, seq INTEGER NOT NULL)"
)
# Lists are per tenant. (One tenant's idempotency keys are kept unique by the log itself.)
_CREATE_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS jobs_tenant_created ON {JOBS_TABLE} (tenant, created_seq)",
)
# A row joined to its JobRequested; a row whose key names any other event is not a job's view.
# It ends inside the join's condition: a query adds its own with `AND`.
_JOINED = ", ".join(f'j."{c}"' for c in COLUMNS)
_SELECT = (
    f"SELECT {_JOINED}, e.data, e.recorded_at "
    f"FROM {JOBS_TABLE} AS j JOIN events AS e ON e.seq = j.created_seq "
    f"AND e.stream_id = j.job_id AND e.version = 1 AND e.type = '{JobRequested.type}'"
)
# Set by JobRequested and never changed after: an update leaves them, and their indexes, alone.
_FIXED = frozenset({"job_id", "tenant", "dataset", "created_seq"})
_UPSERT = f"{_INSERT} ON CONFLICT({_ROWID}) DO UPDATE SET " + ", ".join(
    f'"{c}" = excluded."{c}"' for c in COLUMNS if c not in _FIXED
)
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
_DISPATCH = {t: (_APPLY.get(t), fields) for t, fields in ALLOWED_FIELDS.items()}
_UNKNOWN = (None, None)


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
    with _cyclic_gc_paused():
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
def _cyclic_gc_paused() -> Iterator[None]:
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


_row: Callable[[State], tuple] = operator.itemgetter(*COLUMNS)  # sqlite3 stores a bool as 0/1


def _state_of(row: tuple) -> State:
    """A state from a row of `_SELECT`: the table's columns and its JobRequested's fields."""
    state = dict(zip(COLUMNS, row[:-2], strict=True))
    request = decode_data(_REQUESTED, row[-2])
    for name in _FROM_REQUEST:
        state[name] = request[name]
    state["created_at"] = row[-1]
    return state


def newest_states(
    db: sqlite_utils.Database,
    *,
    equal: dict[str, Any],
    before_seq: int | None = None,
    limit: int,
) -> list[State]:
    """Up to `limit` jobs newest first whose stored columns have the values in `equal`, created
    before `before_seq` if given: one page of a job list."""
    unknown = set(equal) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not columns of the jobs view: {sorted(unknown)}")
    where = [f'j."{c}" = ?' for c in equal]
    params = list(equal.values())
    if before_seq is not None:
        where.append("j.created_seq < ?")
        params.append(before_seq)
    sql = _SELECT + "".join(f" AND {w}" for w in where)
    sql += " ORDER BY j.created_seq DESC LIMIT ?"
    return [_state_of(row) for row in db.execute(sql, [*params, limit])]


class ViewTables:
    """The persisted projection: the `jobs` table plus a checkpoint (last applied seq).

    It lives in the log's own file; every write goes through the connection of the
    transaction it belongs to (the append's, when called as the log's projector).
    """

    def __init__(self, db: sqlite_utils.Database, *, create: bool = True):
        """With `create=False` the tables are used as found (verify reports what is wrong)."""
        self.db = db
        if create:
            with sqlite.immediate(db):
                self.ensure_schema()

    def ensure_schema(self, *, indexes: bool = True) -> None:
        """Create the tables; views of an older shape are dropped, to be caught up from seq 0."""
        db = self.db
        have = tuple((r[1], r[5]) for r in db.execute(f"PRAGMA table_info({JOBS_TABLE})"))
        if have and have != _SHAPE:
            self.drop()
        db.execute(_CREATE_JOBS)
        db.execute(_CREATE_CHECKPOINT)
        if indexes:
            for sql in _CREATE_INDEXES:
                db.execute(sql)

    def drop(self) -> None:
        self.db.execute(f"DROP TABLE IF EXISTS {JOBS_TABLE}")
        self.db.execute(f"DROP TABLE IF EXISTS {CHECKPOINT_TABLE}")

    def checkpoint(self, db: sqlite_utils.Database | None = None) -> int:
        row = (
            (db or self.db)
            .execute(f"SELECT seq FROM {CHECKPOINT_TABLE} WHERE name = ?", [CHECKPOINT_NAME])
            .fetchone()
        )
        return row[0] if row else 0

    def load(self, job_id: str) -> State | None:
        return self._load_many(self.db, [job_id]).get(job_id)

    newest_states = staticmethod(newest_states)  # as PostgresViewTables has it

    @staticmethod
    def status_counts(db: sqlite_utils.Database) -> dict[str, int]:
        """Jobs per status (for /metrics); a locked or missing file is a StorageError."""
        sql = f"SELECT status, COUNT(*) FROM {JOBS_TABLE} GROUP BY status"
        try:
            return dict(db.execute(sql).fetchall())
        except sqlite3.OperationalError as e:
            raise StorageError(f"could not count the jobs in the views: {e}") from e

    @staticmethod
    def last_seq(db: sqlite_utils.Database) -> int:
        """The newest seq in the log beside these views, through any reader (0 when empty)."""
        return db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0

    def job_count(self) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM {JOBS_TABLE}").fetchone()[0]

    def load_all(self) -> dict[str, State]:
        # In creation order, which also has SQLite walk the jobs, not the whole log.
        rows = self.db.execute(f"{_SELECT} ORDER BY j.created_seq")
        with _cyclic_gc_paused():  # as in a replay: many dicts, no cycles
            return {row[0]: _state_of(row) for row in rows}

    @staticmethod
    def _load_many(db: sqlite_utils.Database, job_ids: list[str]) -> dict[str, State]:
        found: dict[str, State] = {}
        for i in range(0, len(job_ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = job_ids[i : i + 500]
            sql = f"{_SELECT} AND e.stream_id IN ({', '.join('?' * len(chunk))})"
            for row in db.execute(sql, chunk):
                found[row[0]] = _state_of(row)
        return found

    # -- the Projector protocol: called by EventLog inside the append's transaction ----------

    def project(self, db: sqlite_utils.Database, recorded: list[RecordedEvent]) -> None:
        if not recorded:
            return
        first = recorded[0].seq
        checkpoint = self.checkpoint(db)
        if checkpoint != first - 1:
            # Someone appended without these views (or they were dropped): catch up first.
            from .sqlite_log import SqliteEventLog  # local: the log imports nothing of views

            self._apply_all(db, SqliteEventLog.read_from(db, checkpoint, upto_seq=first - 1))
        self._apply(db, recorded)

    def _apply_all(self, db: sqlite_utils.Database, records: Iterable[RecordedEvent]) -> int:
        """Apply a stream of events in chunks, so that catching up on a long log stays small."""
        records = iter(records)
        count = 0
        while chunk := list(islice(records, CATCH_UP_CHUNK)):
            self._apply(db, chunk)
            count += len(chunk)
        return count

    def _apply(self, db: sqlite_utils.Database, records: list[RecordedEvent]) -> None:
        if not records:
            return
        touched = self._load_many(db, list({rec.stream_id: None for rec in records}))
        for rec in records:
            touched[rec.stream_id] = fold(touched.get(rec.stream_id), rec)
        db.conn.executemany(_UPSERT, map(_row, touched.values()))
        self._set_checkpoint(db, records[-1].seq)

    @staticmethod
    def _set_checkpoint(db: sqlite_utils.Database, seq: int) -> None:
        db.execute(
            f"INSERT INTO {CHECKPOINT_TABLE}(name, seq) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
            [CHECKPOINT_NAME, seq],
        )

    def catch_up(self, read: Callable[[int], Iterable[RecordedEvent]]) -> int:
        """Apply whatever the log holds after the checkpoint; return how many events."""
        with sqlite.immediate(self.db):
            return self._apply_all(self.db, read(self.checkpoint()))

    def replace_all(
        self, states: dict[str, State], last_seq: int, *, in_transaction: bool = False
    ) -> None:
        """Swap in freshly folded states (rebuild): drop, recreate, fill, set the checkpoint.

        Its own transaction, unless the caller already holds one on this connection.
        """
        if not in_transaction:
            with sqlite.immediate(self.db):
                self.replace_all(states, last_seq, in_transaction=True)
            return
        self.drop()
        self.ensure_schema(indexes=False)
        self.db.conn.executemany(_INSERT, map(_row, states.values()))
        for sql in _CREATE_INDEXES:  # indexing once, after the rows, is faster than per row
            self.db.execute(sql)
        self._set_checkpoint(self.db, last_seq)
