"""The event log on PostgreSQL: the `EventLog` port's second adapter (psycopg 3).

Same table and columns as on SQLite (`data` is `json`, which keeps the exact text, so the
chain hashes the same bytes; `recorded_at` is the same RFC 3339 text), the same chain, the
same guarantees. Appends are serialised by one lock held to commit, so `seq` is gap-free and in
commit order: a reader never sees seq 12 while seq 11 is still in flight. The lock is
`LOCK TABLE events IN EXCLUSIVE MODE` (readers go on; any writer, ours or not, waits), as the
`eventsourcing` library takes it; `pg_advisory_xact_lock` measures the same and only orders
writers that ask for it (bench/eventlog_pg.py, README).

psycopg's errors stop here: a version or idempotency collision is our ConcurrencyError, a
refused row IntegrityError, anything else (connection lost, server gone) StorageError.
The table, its guards and their verify probes live in postgres_schema.py.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import psycopg
from psycopg import errors as pg_errors

from ..config import redact_url
from ..errors import ConcurrencyError, IntegrityError, InternalError, StorageError
from .log import Append, Projector, decoded, first_break, types_clause
from .postgres_append import append_pipelined
from .postgres_conn import LOCK_TIMEOUT_MS, connect, one_line
from .postgres_schema import (
    IDEMPOTENCY_INDEX,
    create_schema,
    has_table,
    missing_guard_triggers,
    probe_guards,
)
from .types import Event, JobRequested, RecordedEvent

# The constraints a second writer can collide with: contention, worth a retry. Any other
# constraint failing inside an append (a projector's, say) is a defect, not a conflict.
COLLISIONS = frozenset({"events_pkey", "events_stream_version", IDEMPOTENCY_INDEX})
# Any fixed 64-bit key; it only has to be the same in every process using this database.
APPEND_LOCK_KEY = 0x5E1E_E7E0_0000_0001
# Every append NOTIFYs this channel in its own transaction (delivered at commit, so a listener
# reads what it was told about); nodes LISTEN to catch up at once (nodes/postgres_listen.py).
NOTIFY_CHANNEL = "silverexport_events"
BATCH_ROWS = 2000
# While the server is away, a call fails at once on the broken connection and a new one is
# tried at most this often: a dead server costs one bounded connect per interval, not one per
# call, so the supervisor and the HTTP threads answer 503 promptly.
RECONNECT_INTERVAL_S = 0.5
LockKind = Literal["table", "advisory"]

_LOCKS: dict[str, str] = {
    "table": "LOCK TABLE events IN EXCLUSIVE MODE",
    "advisory": f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})",
}
_COLUMNS = "seq, stream_id, version, type, data::text, recorded_at"


class PostgresEventLog:
    """Appends with optimistic concurrency and reads back, on one PostgreSQL database.

    Views registered as projector get the connection inside the append's own transaction.
    """

    def __init__(
        self,
        url: str,
        *,
        projector: Projector | None = None,
        create: bool = True,
        lock: LockKind = "table",
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
    ):
        """Connect (and with `create`, make or repair the table, guards and index).

        `create=False` opens the log exactly as it is, for audit and verify: no table is an
        error, and a missing guard stays missing for verify to report.
        """
        self.url = url
        self.projector = projector
        self._lock_sql = _LOCKS[lock]
        self._lock_timeout_ms = lock_timeout_ms
        self._connect_failed: tuple[float, str] | None = None  # (until when, why)
        self.conn = connect(url, lock_timeout_ms=lock_timeout_ms)
        try:
            if create:
                create_schema(self.conn, self.location)
            elif not has_table(self.conn):
                raise StorageError(f"{self.location} holds no event log (no events table)")
        except BaseException:
            self.conn.close()
            raise

    @property
    def location(self) -> str:
        return redact_url(self.url)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[psycopg.Connection]:
        """One REPEATABLE READ, read-only transaction: every read inside sees one state."""
        with self._translated("read the event log"), self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield self.conn

    @contextmanager
    def exclusive(self, *, durable: bool = True) -> Iterator[psycopg.Connection]:
        """A write transaction holding the append lock: no append commits until it ends.

        `durable=False` (rebuilding derived views) does not wait for the WAL flush at commit:
        if the server dies first, the old views come back whole with their own checkpoint.
        """
        with self._translated("write to the event log's database"), self.conn.transaction():
            self.conn.execute(self._lock_sql)
            if not durable:
                self.conn.execute("SET LOCAL synchronous_commit = off")
            yield self.conn

    # -- writing ---------------------------------------------------------------------------

    def append(self, stream_id: str, expected_version: int, *events: Event) -> list[RecordedEvent]:
        return self.append_batch([Append(stream_id, expected_version, events)])

    def append_batch(self, appends: Sequence[Append]) -> list[RecordedEvent]:
        """Append several streams' events in one durable transaction (group commit).

        All or nothing. The append lock is taken before the last seq and the versions are read,
        so no other writer can slip between the check and the insert; UNIQUE (stream_id,
        version) backs it. The commit returns once the WAL is flushed (fsync on). Two round
        trips in all, the views' included (postgres_append.py).
        """
        if not appends:
            return []
        with self._translated("append to the event log"):
            return append_pipelined(
                self.conn, self._lock_sql, appends, self.projector, NOTIFY_CHANNEL
            )

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """psycopg's errors, translated at the edge; a broken connection is made anew next."""
        try:
            yield
        except pg_errors.UniqueViolation as e:
            if e.diag.constraint_name in COLLISIONS:
                raise ConcurrencyError(f"another writer appended first: {one_line(e)}") from e
            raise InternalError(f"the append broke a constraint: {one_line(e)}") from e
        except pg_errors.IntegrityConstraintViolation as e:
            raise IntegrityError(f"the database refused the event: {one_line(e)}") from e
        except psycopg.Error as e:
            self.reconnect_if_broken()
            raise StorageError(f"could not {doing}: {one_line(e)}") from e

    def reconnect_if_broken(self) -> None:
        """After the server went away (stopped, restarted, cut off), a new connection, so
        the node recovers by itself when the server is back; at most one try per interval."""
        if not (self.conn.closed or self.conn.broken):
            return
        with contextlib.suppress(StorageError):  # still down: a later call tries again
            fresh = self._fresh_connection()
            self.conn.close()
            self.conn = fresh

    def _fresh_connection(self) -> psycopg.Connection:
        """A new connection. While the server is known to be away (a connect failed less
        than an interval ago) the same failure at once: however many threads ask, a dead
        server costs one bounded connect per interval."""
        failed = self._connect_failed
        if failed is not None and time.monotonic() < failed[0]:
            raise StorageError(failed[1])
        try:
            conn = connect(self.url, lock_timeout_ms=self._lock_timeout_ms)
        except StorageError as e:
            self._connect_failed = (time.monotonic() + RECONNECT_INTERVAL_S, str(e))
            raise
        self._connect_failed = None
        return conn

    # -- reading ---------------------------------------------------------------------------

    def _scalar(self, sql: str) -> int:
        with self._translated("read the event log"):
            row = self.conn.execute(sql).fetchone()
        return int(row[0] or 0) if row else 0

    def last_seq(self) -> int:
        return self._scalar("SELECT MAX(seq) FROM events")

    def count(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM events")

    def read(
        self,
        after_seq: int = 0,
        *,
        stream_id: str | None = None,
        upto_seq: int | None = None,
        types: Collection[str] | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events in seq order, decoded; streamed in batches so memory stays flat."""
        return decoded(
            self.read_raw(after_seq, stream_id=stream_id, upto_seq=upto_seq, types=types)
        )

    def read_raw(
        self,
        after_seq: int = 0,
        *,
        stream_id: str | None = None,
        upto_seq: int | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple]:
        """Stored rows (seq, stream_id, version, type, data, recorded_at, hash), undecoded."""
        batches = self._batches(
            after_seq, stream_id=stream_id, upto_seq=upto_seq, types=types, limit=limit
        )
        for batch in batches:
            yield from batch

    def read_batches(self, after_seq: int = 0, *, with_hash: bool = True) -> Iterator[list[tuple]]:
        return self._batches(after_seq, with_hash=with_hash)

    def open_reader(self) -> psycopg.Connection:
        """A connection of its own for another thread's reads (`read_from`, the views')."""
        return self._fresh_connection()

    @staticmethod
    def reader_ok(conn: psycopg.Connection) -> bool:
        """A connection the server dropped (restart, pg_terminate_backend) stays broken."""
        return not (conn.closed or conn.broken)

    def read_from(
        self,
        conn: psycopg.Connection,
        after_seq: int = 0,
        *,
        stream_id: str | None = None,
        upto_seq: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Like `read`, through a reader connection from `open_reader`."""
        rows = self._batches(after_seq, stream_id=stream_id, upto_seq=upto_seq, conn=conn)
        return decoded(row for batch in rows for row in batch)

    def _batches(
        self,
        after_seq: int,
        *,
        stream_id: str | None = None,
        upto_seq: int | None = None,
        with_hash: bool = True,
        conn: psycopg.Connection | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[list[tuple]]:
        """Keyset pages (seq > last seen): no cursor held open between pages, so a reader
        never pins a transaction while the caller works; each page is one committed state,
        and seq being commit order means no later page can gain an earlier seq. `types`
        reads through the partial index for the webhooks' types; `limit` bounds the rows."""
        sql = f"SELECT {_COLUMNS}{', hash' if with_hash else ''} FROM events WHERE seq > %s"
        params: list = []
        if stream_id is not None:
            sql += " AND stream_id = %s"
            params.append(stream_id)
        if upto_seq is not None:
            sql += " AND seq <= %s"
            params.append(upto_seq)
        if types is not None:
            sql += f" AND {types_clause(types)}"
        sql += " ORDER BY seq LIMIT %s"
        last = after_seq
        left = limit
        while left is None or left > 0:
            page = BATCH_ROWS if left is None else min(left, BATCH_ROWS)
            with self._translated("read the event log"):
                rows = (conn or self.conn).execute(sql, [last, *params, page]).fetchall()
            if not rows:
                return
            yield rows
            if len(rows) < page:
                return
            last = rows[-1][0]
            if left is not None:
                left -= len(rows)

    def idempotent_stream(self, tenant: str, key: str) -> str | None:
        """The job one tenant's idempotency key names, if any (through the log's own index)."""
        with self._translated("read the event log"):
            row = self.conn.execute(
                f"SELECT stream_id FROM events WHERE type = '{JobRequested.type}' "
                "AND data->>'tenant' = %s AND data->>'idempotency_key' = %s",
                [tenant, key],
            ).fetchone()
        return row[0] if row else None

    def stream_exists(self, stream_id: str) -> bool:
        with self._translated("read the event log"):
            row = self.conn.execute(
                "SELECT 1 FROM events WHERE stream_id = %s AND version = 1", [stream_id]
            ).fetchone()
        return row is not None

    def stream_ids(self) -> Iterator[str]:
        """Every stream, in the order of its first event."""
        last = 0
        while True:
            with self._translated("read the event log"):
                rows = self.conn.execute(
                    "SELECT seq, stream_id FROM events WHERE version = 1 AND seq > %s "
                    f"ORDER BY seq LIMIT {BATCH_ROWS}",
                    [last],
                ).fetchall()
            for _, stream_id in rows:
                yield stream_id
            if len(rows) < BATCH_ROWS:
                return
            last = rows[-1][0]

    # -- integrity -------------------------------------------------------------------------

    def first_bad_seq(
        self, progress: Callable[[int], None] | None = None
    ) -> tuple[int, str] | None:
        """Walk the chain from the first event; return (seq, why) of the first break, or None."""
        return first_break(self.read_raw(), progress)

    def missing_guards(self) -> list[str]:
        """Append-only triggers that are missing, or present but disabled."""
        with self._translated("read the event log's guards"):
            return missing_guard_triggers(self.conn)

    def guard_problems(self) -> list[str]:
        """The triggers must refuse: probed in a transaction that is always rolled back."""
        return probe_guards(self.conn, self._lock_sql)
