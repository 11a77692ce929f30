"""The reads of ExportSystem that ask the persisted views and the log rather than this
process's memory: a job's stored view and its queue position anywhere, a job's history, events
after a seq, one page of the jobs list, the newest seq, the counts for /metrics and the health
probe.

They are apart from system.py, which opens and closes the parts and sends the supervisor its
messages, because they form one side of their own: each goes through this thread's read
connection (ThreadReaders) and none changes anything. The one exception: the queue position of
a job another node queued that this node has not read yet asks the supervisor to catch up
once, so the job takes its place in the order every node works out alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .actors.fair_queue import FairQueue
from .actors.shared_queue import SharedQueue
from .errors import StorageError
from .events.types import RecordedEvent
from .events.views import to_view
from .job_pages import query_jobs
from .model import JobStatus, JobView
from .storage import ExportStorage, check_at_start
from .thread_readers import ThreadReaders


class PersistedReads:
    """Mixed into ExportSystem, which sets `_readers`, `log` (its projector holds the views'
    SQL for the backend), `queue`, `store` and `storage`, and supplies `status` and `catch_up`."""

    _readers: ThreadReaders
    log: Any
    queue: FairQueue | SharedQueue
    store: Any
    storage: ExportStorage | None

    def _stored(self, job_id: str) -> JobView | None:
        state = self._readers.read(self.log.projector.read_state, job_id)
        return None if state is None else to_view(state)

    def _positioned(self, view: JobView) -> JobView:
        """The view with its queue_position, when queued (SPEC §5)."""
        if view.status is not JobStatus.QUEUED:
            return view
        position = self.queue.position(view.job_id)
        if position is None and isinstance(self.queue, SharedQueue):
            # Queued by another node and not read here yet: read it, then it has its place in
            # the order every node works out alike.
            with contextlib.suppress(StorageError):
                self.catch_up()
                position = self.queue.position(view.job_id)
        if position is None:
            # Another process will start it: count the jobs queued before it, anywhere.
            position = 1 + self._readers.read(self.log.projector.queued_ahead_of, view.job_id)
        return replace(view, queue_position=position)

    def events(self, job_id: str, *, tenant: str | None = None) -> list[RecordedEvent]:
        """The job's whole history, from the log."""
        self.status(job_id, tenant=tenant)
        return self._readers.read(
            lambda reader: list(self.log.read_from(reader, 0, stream_id=job_id))
        )

    def events_after(self, after_seq: int, *, limit: int) -> list[RecordedEvent]:
        """Up to `limit` events of any job after `after_seq`, in seq order (whoever wrote them)."""

        def page(reader: Any) -> list[RecordedEvent]:
            events = self.log.read_from(reader, after_seq)
            try:
                return [event for event, _ in zip(events, range(limit), strict=False)]
            finally:
                events.close()

        return self._readers.read(page)

    def last_seq(self) -> int:
        """The newest seq in the log (0 when empty)."""
        return self._readers.read(self.log.projector.last_seq)

    def job_counts(self) -> dict[str, int]:
        """Jobs per status as this node's views say: one GROUP BY, for /metrics."""
        return self._readers.read(self.log.projector.status_counts)  # StorageError: 503, not 500

    def health_checks(self) -> dict[str, Callable[[], object]]:
        """For /healthz: a blocking check per backend this node needs, each raising one of
        our errors (a one-line reason, no password) when its backend is out of reach. The
        event log is asked through the calling thread's reader; the Silver store only when it
        is a server (an SQLite file has nothing to be out of reach of); the export store by
        writing a probe file, or a HEAD of the bucket."""
        checks: dict[str, Callable[[], object]] = {"event_log": self.last_seq}
        check_silver = getattr(self.store, "check", None)
        if check_silver is not None:
            checks["silver_store"] = check_silver
        if self.storage is not None:
            checks["export_storage"] = self._check_storage
        return checks

    def _check_storage(self) -> None:
        check_at_start(self.storage, quick=True)  # the line said at start: the setting

    def list(
        self,
        *,
        tenant: str | None = None,
        status: JobStatus | str | None = None,
        dataset: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobView], str | None]:
        """Jobs newest first, one page at a time; `cursor` is the previous page's next_cursor."""
        views, next_cursor = self._readers.read(
            lambda reader: query_jobs(
                reader,
                newest=self.log.projector.newest_states,  # the views' SQL for this backend
                tenant=tenant,
                status=status,
                dataset=dataset,
                limit=limit,
                cursor=cursor,
            )
        )
        return [self._positioned(v) for v in views], next_cursor
