"""The event log on one SQLite file (the embedded default): the `EventLog` port's first adapter."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from .. import sqlite
from ..errors import ConcurrencyError, IntegrityError, InternalError, StorageError
from ..timeutil import now_text
from .log import (
    APPEND_ONLY_MESSAGE,
    SPARSE_INDEX_SQL,
    Append,
    Projector,
    chain_appends,
    decoded,
    first_break,
    types_clause,
)
from .types import Event, JobRequested, RecordedEvent

REBUILD_CACHE_KIB = -64 * 1024  # negative: KiB, as PRAGMA cache_size takes it
GUARD_TRIGGERS = ("events_no_update", "events_no_delete")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
"""
# One tenant's idempotency key names one job: the log itself refuses a second request with it,
# from any process, with views or without.
_IDEMPOTENCY_INDEX = f"""
CREATE UNIQUE INDEX IF NOT EXISTS events_idempotency ON events (
    json_extract(data, '$.tenant'), json_extract(data, '$.idempotency_key')
) WHERE type = '{JobRequested.type}' AND json_extract(data, '$.idempotency_key') IS NOT NULL
"""


# The constraints a second writer can collide with: contention, worth a retry. Any other
# constraint failing inside an append (a projector's, a trigger's) is a defect of ours.
_COLLISIONS = (
    "UNIQUE constraint failed: events.stream_id, events.version",
    "UNIQUE constraint failed: events.seq",
    "UNIQUE constraint failed: index 'events_idempotency'",
)


def _is_collision(error: sqlite3.IntegrityError) -> bool:
    return str(error) in _COLLISIONS


_INSERT = (
    "INSERT INTO events (seq, stream_id, version, type, data, recorded_at, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class SqliteEventLog:
    """Appends with optimistic concurrency and reads back, on one SQLite file.

    Views registered as projector are updated in the same transaction as the append that caused
    them, so the views in the file never disagree with the log in the file.
    """

    def __init__(
        self, path: str | Path, *, projector: Projector | None = None, create: bool = True
    ):
        """Open (and with `create`, make or repair) the log at `path`.

        `create=False` opens an existing log exactly as it is, for audit and verify: a missing
        file is an error rather than a new empty log, and a missing guard stays missing for
        verify to report instead of being quietly put back.
        """
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StorageError(f"no event log at {self.path}")
        self.db = sqlite.connect(self.path)
        if create:
            try:
                self.db.executescript(_SCHEMA)
                self.db.execute(_IDEMPOTENCY_INDEX)
                self.db.execute(SPARSE_INDEX_SQL)
            except sqlite3.OperationalError as e:
                self.db.close()
                raise StorageError(f"could not open the event log {self.path}: {e}") from e
            except sqlite3.IntegrityError:
                self.db.close()
                raise IntegrityError(
                    f"{self.path}: two requests of one tenant share an idempotency key "
                    "(appended by a version without the log's own guard)"
                ) from None
        elif not self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
        ).fetchone():
            self.db.close()
            raise StorageError(f"{self.path} holds no event log (no events table)")
        self.projector = projector

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def exclusive(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the write lock: no append commits until it ends.

        `durable=False` (rebuilding derived views): the commit is not synced
        (synchronous=NORMAL) and the page cache is large enough to hold the new views; if
        power fails before the WAL reaches the disk, the old views come back whole with their
        own checkpoint, and start-up catch-up brings them up to date.
        """
        conn = self.db
        if durable:
            with sqlite.immediate(self.db):
                yield self.db
            return
        cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = {REBUILD_CACHE_KIB}")
        try:
            with sqlite.immediate(self.db):
                yield self.db
        finally:
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA cache_size = {int(cache)}")

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite.snapshot(self.db)

    # -- writing ---------------------------------------------------------------------------

    def append(self, stream_id: str, expected_version: int, *events: Event) -> list[RecordedEvent]:
        return self.append_batch([Append(stream_id, expected_version, events)])

    def append_batch(self, appends: Sequence[Append]) -> list[RecordedEvent]:
        """Append several streams' events in one durable transaction (group commit).

        All or nothing: if any stream is not at its expected version, nothing is written and
        ConcurrencyError names the stream. The write lock is taken before the versions are
        read, so the check cannot race another process; UNIQUE (stream_id, version) backs it.
        """
        if not appends:
            return []
        conn = self.db
        try:
            with sqlite.immediate(self.db):
                last = conn.execute(
                    "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                versions = self._current_versions(list({a.stream_id: None for a in appends}))
                rows, recorded = chain_appends(appends, last, versions, now_text())
                conn.executemany(_INSERT, rows)
                if self.projector is not None and recorded:
                    self.projector.project(self.db, recorded)
        except sqlite3.IntegrityError as e:
            if _is_collision(e):
                raise ConcurrencyError(f"another writer appended first: {e}") from e
            raise InternalError(f"the append broke a constraint: {e}") from e
        except sqlite3.OperationalError as e:
            raise StorageError(f"could not append to the event log: {e}") from e
        return recorded

    def _current_versions(self, stream_ids: list[str]) -> dict[str, int]:
        versions: dict[str, int] = {}
        for i in range(0, len(stream_ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = stream_ids[i : i + 500]
            versions.update(
                self.db.execute(
                    "SELECT stream_id, MAX(version) FROM events "
                    f"WHERE stream_id IN ({', '.join('?' * len(chunk))}) GROUP BY stream_id",
                    chunk,
                )
            )
        return versions

    # -- reading ---------------------------------------------------------------------------

    def last_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM events").fetchone()
        return row[0] or 0

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
            iter_rows(self.db, after_seq, stream_id=stream_id, upto_seq=upto_seq, types=types)
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
        return iter_rows(
            self.db, after_seq, stream_id=stream_id, upto_seq=upto_seq, types=types, limit=limit
        )

    def read_batches(self, after_seq: int = 0, *, with_hash: bool = True) -> Iterator[list[tuple]]:
        """Stored rows in lists of a few thousand (see `iter_batches`)."""
        return iter_batches(self.db, after_seq, with_hash=with_hash)

    def open_reader(self) -> sqlite3.Connection:
        """A connection of its own for another thread's reads (`read_from`, the views')."""
        return sqlite.connect(self.path)

    @staticmethod
    def reader_ok(db: sqlite3.Connection) -> bool:
        return True  # a file: nothing to lose between calls

    @staticmethod
    def read_from(
        db: sqlite3.Connection,
        after_seq: int = 0,
        *,
        stream_id: str | None = None,
        upto_seq: int | None = None,
    ) -> Iterator[RecordedEvent]:
        return decoded(iter_rows(db, after_seq, stream_id=stream_id, upto_seq=upto_seq))

    def idempotent_stream(self, tenant: str, key: str) -> str | None:
        """The job one tenant's idempotency key names, if any (through the log's own index)."""
        row = self.db.execute(
            f"SELECT stream_id FROM events WHERE type = '{JobRequested.type}' "
            "AND json_extract(data, '$.tenant') = ? "
            "AND json_extract(data, '$.idempotency_key') = ?",
            [tenant, key],
        ).fetchone()
        return row[0] if row else None

    def stream_ids(self) -> Iterator[str]:
        """Every stream, in the order of its first event."""
        cursor = self.db.execute("SELECT stream_id FROM events WHERE version = 1 ORDER BY seq")
        while rows := cursor.fetchmany(2000):
            for (stream_id,) in rows:
                yield stream_id

    def stream_exists(self, stream_id: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM events WHERE stream_id = ? AND version = 1", [stream_id]
        ).fetchone()
        return row is not None

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # -- integrity -------------------------------------------------------------------------

    def first_bad_seq(
        self, progress: Callable[[int], None] | None = None
    ) -> tuple[int, str] | None:
        """Walk the chain from the first event; return (seq, why) of the first break, or None."""
        return first_break(self.read_raw(), progress)

    def missing_guards(self) -> list[str]:
        """Names of the append-only triggers that are missing (empty when all is well)."""
        have = {
            row[0]
            for row in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
            )
        }
        return [name for name in GUARD_TRIGGERS if name not in have]

    def guard_problems(self) -> list[str]:
        """The triggers must refuse: probed on a throwaway row, rolled back."""
        problems = []
        conn = self.db
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO events (seq, stream_id, version, type, data, recorded_at, hash) "
                "VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM events), "
                "'verify-probe', 1, 'probe', '{}', '', '')"
            )
            probe = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            for verb, sql in (
                ("an UPDATE", "UPDATE events SET data = '[]' WHERE seq = ?"),
                ("a DELETE", "DELETE FROM events WHERE seq = ?"),
            ):
                try:
                    conn.execute(sql, [probe])
                except sqlite3.IntegrityError as e:
                    if APPEND_ONLY_MESSAGE in str(e):
                        continue
                problems.append(f"the database accepted {verb} on events")
        except sqlite3.Error as e:
            problems.append(f"could not probe the guards: {e}")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return problems


def iter_rows(
    db: sqlite3.Connection,
    after_seq: int = 0,
    *,
    stream_id: str | None = None,
    upto_seq: int | None = None,
    types: Collection[str] | None = None,
    limit: int | None = None,
) -> Iterator[tuple]:
    """Stored event rows in seq order, fetched in batches so memory stays flat."""
    batches = iter_batches(
        db, after_seq, stream_id=stream_id, upto_seq=upto_seq, types=types, limit=limit
    )
    for batch in batches:
        yield from batch


def iter_batches(
    db: sqlite3.Connection,
    after_seq: int = 0,
    *,
    stream_id: str | None = None,
    upto_seq: int | None = None,
    batch_size: int = 2000,
    with_hash: bool = True,
    types: Collection[str] | None = None,
    limit: int | None = None,
) -> Iterator[list[tuple]]:
    """Lists of stored rows in seq order: the fast path for replaying a whole log.

    Rows are (seq, stream_id, version, type, data, recorded_at[, hash]); replay needs no hash.
    `types` keeps only those types, through the partial index for the webhooks' types.
    """
    sql = f"SELECT seq, stream_id, version, type, data, recorded_at{', hash' if with_hash else ''}"
    sql += " FROM events WHERE seq > ?"
    params: list = [after_seq]
    if stream_id is not None:
        sql += " AND stream_id = ?"
        params.append(stream_id)
    if upto_seq is not None:
        sql += " AND seq <= ?"
        params.append(upto_seq)
    if types is not None:
        sql += f" AND {types_clause(types)}"
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    cursor = db.execute(sql, params)
    while rows := cursor.fetchmany(batch_size):
        yield rows
