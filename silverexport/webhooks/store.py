"""The webhooks' side of the event log: appends, and the reads that find their streams fast.

It holds the log the settings name (SQLite file or PostgreSQL database) through the event-log
port, on a connection of its own; the backends' SQL stays in their adapters. Webhook and
delivery events are few beside job events; each backend keeps a partial index of only them,
so listing webhooks and rebuilding the pending deliveries at start read those rows and no
others. Used from one thread only (the service's).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from ..config import Settings
from ..errors import NotFoundError
from ..events.backends import open_event_log, open_views
from ..events.log import SPARSE_TYPES
from ..events.types import Event, RecordedEvent, decode
from ..events.views import State, fresh_states

Row = tuple[int, str, int, str, str, str]  # seq, stream_id, version, type, data, recorded_at
WEBHOOK_TYPES = SPARSE_TYPES
BATCH = 1000


class WebhookLog:
    """An EventLog connection for the webhook service; it keeps the job views' checkpoint in
    step as every append does, so `verify` finds the views current after webhook events."""

    def __init__(self, settings: Settings):
        self.log = open_event_log(settings)
        try:
            self.log.projector = open_views(self.log)
        except BaseException:
            self.log.close()
            raise

    def close(self) -> None:
        self.log.close()

    def snapshot(self) -> AbstractContextManager[Any]:
        """Reads inside see one state of the log, whoever appends meanwhile."""
        return self.log.snapshot()

    def last_seq(self) -> int:
        return self.log.last_seq()

    def append(self, stream_id: str, expected_version: int, *events: Event) -> list[RecordedEvent]:
        return self.log.append(stream_id, expected_version, *events)

    def webhook_rows(self, upto_seq: int) -> Iterator[Row]:
        """Every webhook and delivery event up to `upto_seq`, in order, through the index."""
        for row in self.log.read_raw(0, upto_seq=upto_seq, types=WEBHOOK_TYPES):
            yield row[:6]

    def rows_after(self, seq: int, limit: int = BATCH) -> list[Row]:
        """The next events of the whole log, fetched whole: appends may follow at once."""
        return [row[:6] for row in self.log.read_raw(seq, limit=limit)]

    def stream(self, stream_id: str) -> list[RecordedEvent]:
        return list(self.log.read(stream_id=stream_id))

    def stream_exists(self, stream_id: str) -> bool:
        return self.log.stream_exists(stream_id)

    def job_at(self, job_id: str, seq: int) -> State:
        """The job's state just after event `seq` (the body of a delivery it caused)."""
        states, _ = fresh_states(self.log.read(stream_id=job_id, upto_seq=seq))
        if job_id not in states:
            raise NotFoundError(f"no job {job_id} in the log")
        return states[job_id]


def decode_row(row: Row) -> Event:
    return decode(row[3], row[4])
