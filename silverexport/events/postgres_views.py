"""The job views on PostgreSQL: the same `jobs` table and checkpoint as views.py keeps on
SQLite, beside the log in the same database, and every SQL they run there.

The fold, the columns and the row shapes are views.py's; only the SQL differs (placeholders,
`= ANY` for lists, `data::text` so the request decodes from its exact stored text, the
catalogue instead of PRAGMA). Writes happen in the append's transaction (as the log's
projector) or under the log's append lock (catch-up, rebuild), so views never disagree with
the log they sit beside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from ..errors import StorageError
from .log import Append
from .postgres_log import PostgresEventLog
from .types import RecordedEvent
from .views import (
    ACTIVE,
    CHECKPOINT_NAME,
    CHECKPOINT_TABLE,
    COLUMNS,
    CREATE_INDEXES,
    JOBS_TABLE,
    OVER,
    JobsSql,
    State,
    _state_of,
    folded,
    in_chunks,
    is_job_event,
)

_ROWID = "created_seq"
_QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)
_SQL = JobsSql(placeholder="%s", integer="BIGINT", data="e.data::text")
_CREATE_JOBS, _CREATE_CHECKPOINT = _SQL.create_jobs, _SQL.create_checkpoint
_INSERT, _UPSERT, _SELECT = _SQL.insert, _SQL.upsert, _SQL.select
_ACTIVE, _OVER, _CREATE_INDEXES = ACTIVE, OVER, CREATE_INDEXES
_SET_CHECKPOINT = (
    f"INSERT INTO {CHECKPOINT_TABLE}(name, seq) VALUES (%s, %s) "
    "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq"
)
_GET_CHECKPOINT = f"SELECT seq FROM {CHECKPOINT_TABLE} WHERE name = %s"
_TRUNCATED = COLUMNS.index("truncated")


def _row(state: State) -> tuple:
    """The table's values of a state; the boolean `truncated` is stored as 0/1 as on SQLite."""
    row = [state[c] for c in COLUMNS]
    row[_TRUNCATED] = int(bool(row[_TRUNCATED]))
    return tuple(row)


@contextmanager
def _translated(doing: str) -> Iterator[None]:
    """A reader's psycopg error (the server gone, say) as our StorageError: a 503, not a 500.
    The reader's owner sees it broken (`reader_ok`) and opens another."""
    try:
        yield
    except psycopg.Error as e:
        raise StorageError(f"could not {doing}: {' '.join(str(e).split())}") from e


class PostgresViewTables:
    """The persisted projection on PostgreSQL; the same methods as views.ViewTables."""

    def __init__(self, log: PostgresEventLog, *, create: bool = True):
        """With `create=False` the tables are used as found (verify reports what is wrong)."""
        self.log = log
        if create and not self._schema_current():
            with log.exclusive():
                self.ensure_schema()

    @property
    def db(self) -> psycopg.Connection:
        return self.log.conn

    @contextmanager
    def _reading(self, doing: str = "read the job views") -> Iterator[psycopg.Connection]:
        """A transaction (a savepoint inside the caller's): a failed read rolls back alone.
        A connection lost with the server is made anew, as the log's own calls do."""
        try:
            with self.db.transaction():
                yield self.db
        except psycopg.Error as e:
            self.log.reconnect_if_broken()
            raise StorageError(f"could not {doing}: {' '.join(str(e).split())}") from e

    def _schema_current(self) -> bool:
        with self._reading() as db:
            have = [
                (name, pk)
                for name, pk in db.execute(
                    "SELECT a.attname, COALESCE(i.indisprimary, false) FROM pg_attribute a "
                    "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
                    "AND a.attnum = ANY(i.indkey) "
                    "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
                    "ORDER BY a.attnum",
                    [JOBS_TABLE],
                )
            ]
            indexes = {
                r[0]
                for r in db.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = %s", [JOBS_TABLE]
                )
            }
            checkpoint = db.execute("SELECT to_regclass(%s)", [CHECKPOINT_TABLE]).fetchone()[0]
        shape = [(c, c == _ROWID) for c in COLUMNS]
        wanted = {"jobs_tenant_created", "jobs_active", "jobs_expiry"}
        return have == shape and checkpoint is not None and wanted <= indexes

    def ensure_schema(self, *, indexes: bool = True) -> None:
        """Create the tables; views of an older shape are dropped, to be caught up from seq 0."""
        if not self._schema_current():
            have = self.db.execute("SELECT to_regclass(%s)", [JOBS_TABLE]).fetchone()[0]
            if have is not None:
                self.drop()
        self.db.execute(_CREATE_JOBS)
        self.db.execute(_CREATE_CHECKPOINT)
        if indexes:
            for sql in _CREATE_INDEXES:
                self.db.execute(sql)

    def drop(self) -> None:
        self.db.execute(f"DROP TABLE IF EXISTS {JOBS_TABLE}")
        self.db.execute(f"DROP TABLE IF EXISTS {CHECKPOINT_TABLE}")

    # -- reading ---------------------------------------------------------------------------

    def checkpoint(self, db: psycopg.Connection | None = None) -> int:
        with self._reading() as conn:
            row = (
                (db or conn)
                .execute(f"SELECT seq FROM {CHECKPOINT_TABLE} WHERE name = %s", [CHECKPOINT_NAME])
                .fetchone()
            )
        return row[0] if row else 0

    def load(self, job_id: str) -> State | None:
        return self.load_many([job_id]).get(job_id)

    def load_many(self, job_ids: list[str]) -> dict[str, State]:
        with self._reading() as db:
            return self._load_many(db, job_ids)

    def load_all(self) -> dict[str, State]:
        with self._reading() as db:
            rows = db.execute(f"{_SELECT} ORDER BY j.created_seq").fetchall()
        return {row[0]: _state_of(row) for row in rows}

    def job_count(self) -> int:
        with self._reading() as db:
            return db.execute(f"SELECT COUNT(*) FROM {JOBS_TABLE}").fetchone()[0]

    def active_snapshot(self) -> tuple[int, dict[str, State]]:
        """(checkpoint, every queued or running job in creation order) as of one moment."""
        with self.log.snapshot():
            checkpoint = self.checkpoint()
            with self._reading() as db:
                rows = db.execute(f"{_SELECT} AND {_ACTIVE} ORDER BY j.created_seq").fetchall()
        return checkpoint, {row[0]: _state_of(row) for row in rows}

    def due_to_expire(self, now: str, limit: int = 500) -> list[State]:
        """Finished jobs whose expires_at has come, soonest first."""
        sql = f"{_SELECT} AND {_OVER} AND j.expires_at <= %s ORDER BY j.expires_at LIMIT %s"
        with self._reading() as db:
            return [_state_of(row) for row in db.execute(sql, [now, limit])]

    @staticmethod
    def read_state(db: psycopg.Connection, job_id: str) -> State | None:
        """One job's persisted state, through any connection to the log's database."""
        with _translated("read the job views"):
            return PostgresViewTables._load_many(db, [job_id]).get(job_id)

    @staticmethod
    def status_counts(db: psycopg.Connection) -> dict[str, int]:
        """Jobs per status (for /metrics); an unreachable database is a StorageError."""
        try:
            return dict(
                db.execute(f"SELECT status, COUNT(*) FROM {JOBS_TABLE} GROUP BY status").fetchall()
            )
        except psycopg.Error as e:
            raise StorageError(f"could not count the jobs in the views: {e}") from e

    @staticmethod
    def last_seq(db: psycopg.Connection) -> int:
        """The newest seq in the log beside these views, through any reader (0 when empty)."""
        try:
            return db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
        except psycopg.Error as e:
            raise StorageError(f"could not read the event log: {e}") from e

    @staticmethod
    def queued_ahead_of(db: psycopg.Connection, job_id: str) -> int:
        """How many jobs (of any process) are queued and were created before this one."""
        sql = (
            f"SELECT COUNT(*) FROM {JOBS_TABLE} AS j WHERE j.status = 'queued' "
            "AND j.created_seq < (SELECT seq FROM events WHERE stream_id = %s AND version = 1)"
        )
        with _translated("read the job views"):
            return db.execute(sql, [job_id]).fetchone()[0]

    @staticmethod
    def newest_states(
        db: psycopg.Connection,
        *,
        equal: dict[str, Any],
        before_seq: int | None = None,
        limit: int,
    ) -> list[State]:
        """Up to `limit` jobs newest first with the column values in `equal`: a list page."""
        sql, params = _SQL.page(equal, before_seq, limit)
        with _translated("list the jobs"):
            return [_state_of(row) for row in db.execute(sql, params)]

    @staticmethod
    def _load_many(db: psycopg.Connection, job_ids: list[str]) -> dict[str, State]:
        rows = db.execute(f"{_SELECT} AND e.stream_id = ANY(%s)", [job_ids]).fetchall()
        return {row[0]: _state_of(row) for row in rows}

    # -- the Projector protocol: called by the log inside the append's transaction ---------

    def project(self, db: psycopg.Connection, recorded: list[RecordedEvent]) -> None:
        if not recorded:
            return
        first = recorded[0].seq
        checkpoint = self._checkpoint_in(db)
        if checkpoint != first - 1:
            # Someone appended without these views (or they were dropped): catch up first.
            self._apply_all(db, self.log.read(checkpoint, upto_seq=first - 1))
        self._apply(db, recorded)

    @staticmethod
    def _checkpoint_in(db: psycopg.Connection) -> int:
        row = db.execute(_GET_CHECKPOINT, [CHECKPOINT_NAME]).fetchone()
        return row[0] if row else 0

    def _apply_all(self, db: psycopg.Connection, records: Iterable[RecordedEvent]) -> int:
        return in_chunks(lambda chunk: self._apply(db, chunk), records)

    def prefetch(
        self, db: psycopg.Connection, appends: Sequence[Append]
    ) -> Callable[[list[RecordedEvent]], None]:
        """`project` in two halves, for the append's pipeline: its reads (the checkpoint, the
        touched jobs' rows) go out with the append's own and are fetched here; the step
        returned queues the writes. A checkpoint behind the log falls back to `project`."""
        checkpoint_cur = db.execute(_GET_CHECKPOINT, [CHECKPOINT_NAME])
        jobs = list(
            {a.stream_id: None for a in appends if any(is_job_event(e.type) for e in a.events)}
        )
        states_cur = db.execute(f"{_SELECT} AND e.stream_id = ANY(%s)", [jobs]) if jobs else None
        row = checkpoint_cur.fetchone()
        checkpoint = row[0] if row else 0
        loaded = {r[0]: _state_of(r) for r in states_cur.fetchall()} if states_cur else {}

        def project(recorded: list[RecordedEvent]) -> None:
            if checkpoint != recorded[0].seq - 1:
                self.project(db, recorded)
                return
            self._apply(db, recorded, lambda ids: {i: loaded[i] for i in ids if i in loaded})

        return project

    def _apply(
        self,
        db: psycopg.Connection,
        records: list[RecordedEvent],
        load_many: Callable[[list[str]], dict[str, State]] | None = None,
    ) -> None:
        """Fold the records onto the views' states (`load_many`, or read now) and write them."""
        if not records:
            return
        if states := folded(records, load_many or (lambda ids: self._load_many(db, ids))):
            with db.cursor() as cur:
                cur.executemany(_UPSERT, [_row(s) for s in states])
        db.execute(_SET_CHECKPOINT, [CHECKPOINT_NAME, records[-1].seq])

    def catch_up(self, read: Callable[[int], Iterable[RecordedEvent]]) -> int:
        """Apply whatever the log holds after the checkpoint; return how many events."""
        with self.log.exclusive() as db:
            return self._apply_all(db, read(self._checkpoint_in(db)))

    def replace_all(
        self, states: dict[str, State], last_seq: int, *, in_transaction: bool = False
    ) -> None:
        """Swap in freshly folded states (rebuild): drop, recreate, fill, set the checkpoint.

        Its own transaction under the append lock, unless the caller already holds one.
        """
        if not in_transaction:
            with self.log.exclusive():
                self.replace_all(states, last_seq, in_transaction=True)
            return
        self.drop()
        self.db.execute(_CREATE_JOBS)
        self.db.execute(_CREATE_CHECKPOINT)
        with self.db.cursor() as cur, cur.copy(f"COPY {JOBS_TABLE} ({_QUOTED}) FROM STDIN") as copy:
            for state in states.values():
                copy.write_row(_row(state))
        for sql in _CREATE_INDEXES:  # indexing once, after the rows, is faster than per row
            self.db.execute(sql)
        self.db.execute(_SET_CHECKPOINT, [CHECKPOINT_NAME, last_seq])
