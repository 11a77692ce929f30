"""One append on PostgreSQL in two round trips, however many events and views it writes.

The append lock orders every append of every node, so the time it is held per transaction is
the log's ceiling; and most of that time was round trips, each paid while holding it. In
psycopg's pipeline mode statements are sent without waiting for their results, and the server
runs them as they come. So an append costs:

1. BEGIN, the lock, the chain's head, each stream's version and whatever a `Prefetching`
   projector reads (the views' checkpoint and the rows of the jobs touched), answered at once;
2. after the client has hashed the rows: the events (one INSERT from arrays), the views' writes,
   the NOTIFY and the COMMIT, sent together and answered together at the commit's WAL flush.

BEGIN and COMMIT are statements of the pipeline, not psycopg's `transaction()` (in a pipeline
it syncs before its COMMIT, a round trip more). Any failure rolls the transaction back before
it leaves here: a statement's error is raised by the final sync with the first failing
statement's own error (its constraint name included, which the log translates), and an error
of ours (a version conflict, a projector's refusal) by the code that raised it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import psycopg
from psycopg.pq import TransactionStatus

from ..timeutil import now_text
from .log import Append, Projector, Row, chain_appends
from .types import RecordedEvent

# The log's last (seq, hash, recorded_at) and each stream's version: what chains the rows.
_HEAD = "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1"
_VERSIONS = (
    "SELECT stream_id, MAX(version) FROM events WHERE stream_id = ANY(%s) GROUP BY stream_id"
)
# One statement whatever the batch: a column per array. `data` goes in as text and is cast,
# so the json column keeps the exact text the chain hashed.
_INSERT = (
    "INSERT INTO events (seq, stream_id, version, type, data, recorded_at, hash) "
    "SELECT seq, stream_id, version, type, data::json, recorded_at, hash FROM unnest("
    "%s::bigint[], %s::text[], %s::integer[], %s::text[], %s::text[], %s::text[], %s::text[]"
    ") AS r(seq, stream_id, version, type, data, recorded_at, hash)"
)
_NOTIFY = "SELECT pg_notify(%s, %s)"

Project = Callable[[list[RecordedEvent]], None]


@runtime_checkable
class Prefetching(Protocol):
    """A projector whose reads can go out with the append's first round trip."""

    def prefetch(self, conn: psycopg.Connection, appends: Sequence[Append]) -> Project:
        """Queue (and fetch) what projecting these appends reads, under the lock queued
        before; return the step that queues the writes once the events are recorded."""
        ...


def append_pipelined(
    conn: psycopg.Connection,
    lock_sql: str,
    appends: Sequence[Append],
    projector: Projector | None,
    channel: str,
) -> list[RecordedEvent]:
    """Append in one transaction and two round trips; see the module's docstring."""
    streams = list({a.stream_id: None for a in appends})
    with _pipelined_transaction(conn):
        conn.execute(lock_sql)
        head = conn.execute(_HEAD)
        versions = conn.execute(_VERSIONS, [streams])
        project = projector.prefetch(conn, appends) if isinstance(projector, Prefetching) else None
        rows, recorded = chain_appends(
            appends, head.fetchone(), dict(versions.fetchall()), now_text()
        )
        if not recorded:
            return recorded
        conn.execute(_INSERT, _columns(rows))
        if project is not None:
            project(recorded)
        elif projector is not None:
            projector.project(conn, recorded)
        # The payload is the last seq: a listener may skip a catch-up it has done.
        conn.execute(_NOTIFY, [channel, str(recorded[-1].seq)])
    return recorded


def _columns(rows: list[Row]) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)]


@contextmanager
def _pipelined_transaction(conn: psycopg.Connection) -> Iterator[None]:
    """BEGIN ... COMMIT inside one pipeline; rolled back on any failure, the first failure
    raised, and the connection left idle (or broken, for the caller to replace)."""
    failure: BaseException | None = None
    try:
        with conn.pipeline() as pipeline:
            try:
                conn.execute("BEGIN")
                yield
                conn.execute("COMMIT")
            except BaseException as e:  # ours, or a statement's error met early
                failure = e
                # Read what is still in flight, so the pipeline ends cleanly (and quietly).
                with contextlib.suppress(psycopg.Error):
                    pipeline.sync()
    except psycopg.Error as e:  # met by the final sync: a statement's error, or the COMMIT's
        failure = failure or e
    if failure is not None:
        if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):  # the first error is the one to report
                conn.execute("ROLLBACK")
        raise failure
