"""The webhooks' side of the event log: appends, and the reads that find their streams fast.

Webhook and delivery events are few beside job events; a partial index holds only them, so
listing webhooks and rebuilding the pending deliveries at start read those rows and no others.
Used from one thread only (the service's), on a connection of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..config import Settings
from ..errors import NotFoundError
from ..events.sqlite_log import SqliteEventLog
from ..events.types import WEBHOOK_EVENT_TYPES, Event, RecordedEvent, decode
from ..events.views import State, ViewTables, fresh_states

Row = tuple[int, str, int, str, str, str]  # seq, stream_id, version, type, data, recorded_at
WEBHOOK_TYPES = frozenset(cls.type for cls in WEBHOOK_EVENT_TYPES)
_IN_TYPES = "type IN (" + ", ".join(f"'{t}'" for t in sorted(WEBHOOK_TYPES)) + ")"
# The query must repeat the index's condition word for word for SQLite to use the index.
_INDEX = f"CREATE INDEX IF NOT EXISTS events_webhooks ON events (seq) WHERE {_IN_TYPES}"
_COLUMNS = "seq, stream_id, version, type, data, recorded_at"
BATCH = 1000


class WebhookLog:
    """An EventLog connection for the webhook service; it keeps the job views' checkpoint in
    step as every append does, so `verify` finds the views current after webhook events."""

    def __init__(self, settings: Settings):
        # Its reads are SQLite's SQL: webhooks run on the SQLite log (not yet on PostgreSQL).
        self.log = SqliteEventLog(settings.events_path)
        self.log.projector = ViewTables(self.log.db)
        self.db = self.log.db
        self.db.execute(_INDEX)

    def close(self) -> None:
        self.log.close()

    def last_seq(self) -> int:
        return self.log.last_seq()

    def append(self, stream_id: str, expected_version: int, *events: Event) -> list[RecordedEvent]:
        return self.log.append(stream_id, expected_version, *events)

    def webhook_rows(self, upto_seq: int) -> Iterator[Row]:
        """Every webhook and delivery event up to `upto_seq`, in order, through the index."""
        after = 0
        while True:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE {_IN_TYPES} AND seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT ?",
                [after, upto_seq, BATCH],
            ).fetchall()
            yield from rows
            if len(rows) < BATCH:
                return
            after = rows[-1][0]

    def rows_after(self, seq: int, limit: int = BATCH) -> list[Row]:
        """The next events of the whole log, fetched whole: appends may follow at once."""
        return self.db.execute(
            f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", [seq, limit]
        ).fetchall()

    def stream(self, stream_id: str) -> list[RecordedEvent]:
        return list(self.log.read(stream_id=stream_id))

    def stream_exists(self, stream_id: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM events WHERE stream_id = ? AND version = 1", [stream_id]
        ).fetchone()
        return row is not None

    def job_at(self, job_id: str, seq: int) -> State:
        """The job's state just after event `seq` (the body of a delivery it caused)."""
        states, _ = fresh_states(self.log.read(stream_id=job_id, upto_seq=seq))
        if job_id not in states:
            raise NotFoundError(f"no job {job_id} in the log")
        return states[job_id]


def decode_row(row: Row) -> Event:
    return decode(row[3], row[4])
