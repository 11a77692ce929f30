"""JobViews: the job status projection persisted beside the log, and every SQL it runs.

The fold itself (what an event does to a job) lives in `fold`; this module keeps its results in
the `jobs` table, with a checkpoint, and answers the queries asked of them. All the views' SQL is
here, so another database needs one more module of this shape, not edits all over.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from .. import sqlite
from ..errors import StorageError
from ..model import JobStatus
from .fold import (
    FIELDS,
    JOB_EVENT_TYPES,
    Data,
    Progress,
    State,
    cyclic_gc_paused,
    fold,
    fold_all,
    fresh_states,
    is_job_event,
    normalised,
    replay,
    to_view,
)
from .types import JobRequested, RecordedEvent, decode_data

__all__ = [
    "FIELDS",
    "JOB_EVENT_TYPES",
    "Data",
    "Progress",
    "State",
    "ViewTables",
    "fold",
    "fold_all",
    "fresh_states",
    "is_job_event",
    "newest_states",
    "normalised",
    "replay",
    "to_view",
]

JOBS_TABLE = "jobs"
CHECKPOINT_TABLE = "view_checkpoint"
CHECKPOINT_NAME = "jobs"
CATCH_UP_CHUNK = 5_000  # events applied per step of a catch-up
# event (its seq is the row's key). Rows 40% narrower make every write, and a rebuild, cheaper.
_FROM_REQUEST = (
    *("format", "compression", "filters", "limit"),
    *("idempotency_key", "request_digest", "max_records"),
)
_FROM_EVENT = (*_FROM_REQUEST, "created_at")  # created_at: the event's recorded_at
COLUMNS = tuple(c for c in FIELDS if c not in _FROM_EVENT)  # the table's, in order
_QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)  # "limit" is an SQL keyword
_NOT_NULL = {"job_id", "tenant", "status", "version", "last_seq"}
# The rowid is the seq of the job's JobRequested: rows are stored in creation order, which lists
# jobs newest first without an index, lets a rebuild append its rows in order, and finds a job
# by id through the log's own (stream_id, version) index.
_ROWID = "created_seq"
ACTIVE = "j.status IN ('queued', 'running')"
OVER = "j.status IN ('completed', 'failed', 'cancelled')"
# Lists are per tenant. (One tenant's idempotency keys are kept unique by the log itself.)
# The active set and the next expiries are found through small partial indexes, so start-up and
# the expiry timer cost what is active or due, not what the log has ever held.
_INDEX_NAMES = ("jobs_tenant_created", "jobs_active", "jobs_expiry")
CREATE_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS jobs_tenant_created ON {JOBS_TABLE} (tenant, created_seq)",
    f"CREATE INDEX IF NOT EXISTS jobs_active ON {JOBS_TABLE} (status, created_seq) "
    f"WHERE {ACTIVE.replace('j.', '')}",
    f"CREATE INDEX IF NOT EXISTS jobs_expiry ON {JOBS_TABLE} (expires_at) "
    f"WHERE {OVER.replace('j.', '')}",
)
# Set by JobRequested and never changed after: an update leaves them, and their indexes, alone.
_FIXED = frozenset({"job_id", "tenant", "dataset", "created_seq"})
_JOINED = ", ".join(f'j."{c}"' for c in COLUMNS)


def folded(
    records: list[RecordedEvent], load_many: Callable[[list[str]], dict[str, State]]
) -> list[State]:
    """The states a batch of events leaves its jobs in, folded onto what the views hold
    (`load_many`); events of other streams (webhooks, deliveries) are not jobs. Both backends'
    views apply a batch with this, so they cannot fold differently."""
    jobs = [rec for rec in records if is_job_event(rec.event.type)]
    if not jobs:
        return []
    touched = load_many(list({rec.stream_id: None for rec in jobs}))
    for rec in jobs:
        touched[rec.stream_id] = fold(touched.get(rec.stream_id), rec)
    return list(touched.values())


def in_chunks(
    apply: Callable[[list[RecordedEvent]], None], records: Iterable[RecordedEvent]
) -> int:
    """Apply a stream of events in chunks, so that catching up on a long log stays small;
    returns how many events."""
    records = iter(records)
    count = 0
    while chunk := list(islice(records, CATCH_UP_CHUNK)):
        apply(chunk)
        count += len(chunk)
    return count


class JobsSql:
    """The views' statements in one backend's SQL: they differ only in the placeholder, the
    integer type and how the request's stored text is read back."""

    def __init__(self, *, placeholder: str, integer: str, data: str):
        self.placeholder = placeholder
        sql_types = {str: "TEXT", int: integer}
        self.create_jobs = (
            f"CREATE TABLE IF NOT EXISTS {JOBS_TABLE} ("
            + ", ".join(
                f'"{c}" {sql_types[FIELDS[c]]}{" NOT NULL" if c in _NOT_NULL else ""}'
                + (" PRIMARY KEY" if c == _ROWID else "")
                for c in COLUMNS
            )
            + ")"
        )
        self.create_checkpoint = (
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} "
            f"(name TEXT PRIMARY KEY, seq {integer} NOT NULL)"
        )
        values = ", ".join([placeholder] * len(COLUMNS))
        self.insert = f"INSERT INTO {JOBS_TABLE} ({_QUOTED}) VALUES ({values})"
        self.upsert = f"{self.insert} ON CONFLICT({_ROWID}) DO UPDATE SET " + ", ".join(
            f'"{c}" = excluded."{c}"' for c in COLUMNS if c not in _FIXED
        )
        # A row joined to its JobRequested; a row whose key names any other event is not a
        # job's view. It ends inside the join's condition: a query adds its own with `AND`.
        self.select = (
            f"SELECT {_JOINED}, {data}, e.recorded_at "
            f"FROM {JOBS_TABLE} AS j JOIN events AS e ON e.seq = j.created_seq "
            f"AND e.stream_id = j.job_id AND e.version = 1 AND e.type = '{JobRequested.type}'"
        )

    def page(
        self, equal: dict[str, Any], before_seq: int | None, limit: int
    ) -> tuple[str, list[Any]]:
        """The query (and its parameters) of `newest_states`; ValueError on a non-column."""
        unknown = set(equal) - set(COLUMNS)
        if unknown:
            raise ValueError(f"not columns of the jobs view: {sorted(unknown)}")
        mark = self.placeholder
        where = [f'j."{c}" = {mark}' for c in equal]
        params = list(equal.values())
        if before_seq is not None:
            where.append(f"j.created_seq < {mark}")
            params.append(before_seq)
        sql = self.select + "".join(f" AND {w}" for w in where)
        return f"{sql} ORDER BY j.created_seq DESC LIMIT {mark}", [*params, limit]


_SQL = JobsSql(placeholder="?", integer="INTEGER", data="e.data")
_CREATE_JOBS, _CREATE_CHECKPOINT = _SQL.create_jobs, _SQL.create_checkpoint
_INSERT, _UPSERT, _SELECT = _SQL.insert, _SQL.upsert, _SQL.select
_ACTIVE, _OVER, _CREATE_INDEXES = ACTIVE, OVER, CREATE_INDEXES
_SHAPE = tuple((c, int(c == _ROWID)) for c in COLUMNS)  # (name, pk) as PRAGMA table_info says
_REQUESTED = JobRequested.type
_QUEUED, _RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value


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
    db: sqlite3.Connection,
    *,
    equal: dict[str, Any],
    before_seq: int | None = None,
    limit: int,
) -> list[State]:
    """Up to `limit` jobs newest first whose stored columns have the values in `equal`, created
    before `before_seq` if given: one page of a job list."""
    sql, params = _SQL.page(equal, before_seq, limit)
    return [_state_of(row) for row in db.execute(sql, params)]


class ViewTables:
    """The persisted projection: the `jobs` table plus a checkpoint (last applied seq).

    It lives in the log's own file; every write goes through the connection of the
    transaction it belongs to (the append's, when called as the log's projector).
    """

    def __init__(self, db: sqlite3.Connection, *, create: bool = True):
        """With `create=False` the tables are used as found (verify reports what is wrong)."""
        self.db = db
        if create and not self._schema_current():
            with sqlite.immediate(db):
                self.ensure_schema()

    def _schema_current(self) -> bool:
        """True when every table and index is there as this version makes them: opening an
        existing data dir then takes no write lock."""
        have = tuple((r[1], r[5]) for r in self.db.execute(f"PRAGMA table_info({JOBS_TABLE})"))
        names = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
        return have == _SHAPE and {CHECKPOINT_TABLE, *_INDEX_NAMES} <= names

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

    def checkpoint(self, db: sqlite3.Connection | None = None) -> int:
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
    def status_counts(db: sqlite3.Connection) -> dict[str, int]:
        """Jobs per status (for /metrics); a locked or missing file is a StorageError."""
        sql = f"SELECT status, COUNT(*) FROM {JOBS_TABLE} GROUP BY status"
        try:
            return dict(db.execute(sql).fetchall())
        except sqlite3.OperationalError as e:
            raise StorageError(f"could not count the jobs in the views: {e}") from e

    @staticmethod
    def last_seq(db: sqlite3.Connection) -> int:
        """The newest seq in the log beside these views, through any reader (0 when empty)."""
        return db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0

    def job_count(self) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM {JOBS_TABLE}").fetchone()[0]

    def load_all(self) -> dict[str, State]:
        # In creation order, which also has SQLite walk the jobs, not the whole log.
        rows = self.db.execute(f"{_SELECT} ORDER BY j.created_seq")
        with cyclic_gc_paused():  # as in a replay: many dicts, no cycles
            return {row[0]: _state_of(row) for row in rows}

    def active_snapshot(self) -> tuple[int, dict[str, State]]:
        """(checkpoint, every queued or running job in creation order), read as of one moment:
        what a process keeps in memory, and where in the log it is."""
        with sqlite.snapshot(self.db):
            checkpoint = self.checkpoint()
            rows = self.db.execute(f"{_SELECT} AND {_ACTIVE} ORDER BY j.created_seq")
            return checkpoint, {row[0]: _state_of(row) for row in rows}

    @staticmethod
    def read_state(db: sqlite3.Connection, job_id: str) -> State | None:
        """One job's persisted state, through any connection to the log's file."""
        return ViewTables._load_many(db, [job_id]).get(job_id)

    @staticmethod
    def queued_ahead_of(db: sqlite3.Connection, job_id: str) -> int:
        """How many jobs (of any process) are queued and were created before this one."""
        sql = (
            f"SELECT COUNT(*) FROM {JOBS_TABLE} AS j WHERE {_ACTIVE} AND j.status = '{_QUEUED}' "
            "AND j.created_seq < (SELECT seq FROM events WHERE stream_id = ? AND version = 1)"
        )
        return db.execute(sql, [job_id]).fetchone()[0]

    def load_many(self, job_ids: list[str]) -> dict[str, State]:
        return self._load_many(self.db, job_ids)

    def due_to_expire(self, now: str, limit: int = 500) -> list[State]:
        """Finished jobs whose expires_at has come, soonest first."""
        sql = f"{_SELECT} AND {_OVER} AND j.expires_at <= ? ORDER BY j.expires_at LIMIT ?"
        return [_state_of(row) for row in self.db.execute(sql, [now, limit])]

    @staticmethod
    def _load_many(db: sqlite3.Connection, job_ids: list[str]) -> dict[str, State]:
        found: dict[str, State] = {}
        for i in range(0, len(job_ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = job_ids[i : i + 500]
            sql = f"{_SELECT} AND e.stream_id IN ({', '.join('?' * len(chunk))})"
            for row in db.execute(sql, chunk):
                found[row[0]] = _state_of(row)
        return found

    # -- the Projector protocol: called by EventLog inside the append's transaction ----------

    def project(self, db: sqlite3.Connection, recorded: list[RecordedEvent]) -> None:
        if not recorded:
            return
        first = recorded[0].seq
        checkpoint = self.checkpoint(db)
        if checkpoint != first - 1:
            # Someone appended without these views (or they were dropped): catch up first.
            from .sqlite_log import SqliteEventLog  # local: the log imports nothing of views

            self._apply_all(db, SqliteEventLog.read_from(db, checkpoint, upto_seq=first - 1))
        self._apply(db, recorded)

    def _apply_all(self, db: sqlite3.Connection, records: Iterable[RecordedEvent]) -> int:
        return in_chunks(lambda chunk: self._apply(db, chunk), records)

    def _apply(self, db: sqlite3.Connection, records: list[RecordedEvent]) -> None:
        if not records:
            return
        if states := folded(records, lambda ids: self._load_many(db, ids)):
            db.executemany(_UPSERT, map(_row, states))
        self._set_checkpoint(db, records[-1].seq)

    @staticmethod
    def _set_checkpoint(db: sqlite3.Connection, seq: int) -> None:
        db.execute(
            f"INSERT INTO {CHECKPOINT_TABLE}(name, seq) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
            [CHECKPOINT_NAME, seq],
        )

    def catch_up(self, read: Callable[[int], Iterable[RecordedEvent]]) -> int:
        """Apply whatever the log holds after the checkpoint; return how many events."""
        if next(iter(read(self.checkpoint())), None) is None:
            return 0  # nothing new: no write lock to wait for (a busy server holds it often)
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
        self.db.executemany(_INSERT, map(_row, states.values()))
        for sql in _CREATE_INDEXES:  # indexing once, after the rows, is faster than per row
            self.db.execute(sql)
        self._set_checkpoint(self.db, last_seq)
