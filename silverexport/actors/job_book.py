"""JobBook: what this process knows of jobs — the active ones in memory, the rest in the views.

Only queued and running jobs (of any process, as far as this one has read the log) are held
here; a finished job is answered from the persisted views. So memory and start-up follow the
active set and the events since the views' checkpoint, not the history (SPEC §5).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from ..errors import ConcurrencyError
from ..events.log import Append, EventLog
from ..events.types import Event, JobRequested, RecordedEvent
from ..events.views import State, ViewTables, fold, is_job_event, to_view
from ..model import JobStatus, JobView

QUEUED, RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value
ACTIVE = frozenset({QUEUED, RUNNING})
_REQUESTED = JobRequested.type

jobs_log = logging.getLogger("silverexport.jobs")


class JobBook:
    def __init__(
        self,
        log_: EventLog,
        views: ViewTables,
        *,
        publish: Callable[[JobView], None],
        changed: Callable[[State], None],
    ):
        self.log = log_
        self.views = views
        self.publish = publish
        self.changed = changed  # the supervisor's hook: a job it runs may have moved on
        self.active: dict[str, State] = {}
        self.queued_per_tenant: Counter[str] = Counter()
        self.seen_seq = 0

    def load(self) -> None:
        """Start-up: catch the persisted views up with the log, then hold the active jobs."""
        self.views.catch_up(self.log.read)
        self.seen_seq, active = self.views.active_snapshot()
        for state in active.values():
            self._track(None, state)

    def get(self, job_id: str) -> State | None:
        """The job's state: held if active, else as the views persist it (None: no such job)."""
        state = self.active.get(job_id)
        return state if state is not None else self.views.load(job_id)

    def find_idempotent(self, tenant: str, key: str) -> State | None:
        job_id = self.log.idempotent_stream(tenant, key)
        return None if job_id is None else self.get(job_id)

    def queued(self, tenant: str) -> int:
        return self.queued_per_tenant[tenant]

    # -- reading and writing the log -------------------------------------------------------

    def catch_up(self) -> int:
        records = list(self.log.read(self.seen_seq))
        self.apply(records)
        return len(records)

    def append(self, job_id: str, *events: Event) -> State:
        """Append to one job's stream at the version we know; on conflict, catch up and raise."""
        state = self.active.get(job_id)
        if state is None and not isinstance(events[0], JobRequested):
            state = self.views.load(job_id)  # a job over already (its expiry, say)
        version = state["version"] if state else 0
        try:
            records = self.log.append_batch([Append(job_id, version, events)])
        except ConcurrencyError:
            self.catch_up()
            raise
        for rec in records:
            _log_change(rec)  # before it is published: a waiter may read the log at once
        if records[0].seq != self.seen_seq + 1:
            self.catch_up()  # another process appended in between: read it all in order
            return self.get(job_id) or {}
        return self.apply(records)[job_id]

    def apply(self, records: list[RecordedEvent]) -> dict[str, State]:
        """Fold events read from the log in; returns the jobs' states they left."""
        touched: dict[str, State] = {}
        for rec in records:
            self.seen_seq = rec.seq
            if not is_job_event(rec):
                continue  # another kind of stream (not a job's)
            prev = self.active.get(rec.stream_id)
            if prev is None and rec.event.type != _REQUESTED:
                # A job over already (only expiry follows): the views hold it as it is now.
                state = self.views.load(rec.stream_id)
                if state is not None:
                    touched[rec.stream_id] = state
                    self.changed(state)
                    self.publish(to_view(state))
                continue
            if prev is not None and rec.seq <= prev["last_seq"]:
                continue  # loaded at start-up already past this event
            touched[rec.stream_id] = state = fold(prev, rec)
            self._track(prev, state)
        return touched

    def _track(self, prev: State | None, state: State) -> None:
        job_id, status = state["job_id"], state["status"]
        if prev is not None and prev["status"] == QUEUED:
            self.queued_per_tenant[prev["tenant"]] -= 1
        if status == QUEUED:
            self.queued_per_tenant[state["tenant"]] += 1
        elif self.queued_per_tenant[state["tenant"]] <= 0:
            del self.queued_per_tenant[state["tenant"]]
        if status in ACTIVE:
            self.active[job_id] = state
        else:
            self.active.pop(job_id, None)
        self.changed(state)
        self.publish(to_view(state))


def _log_change(rec: RecordedEvent) -> None:
    """One line per job state change this process recorded, for operators (SPEC §10)."""
    if not is_job_event(rec) or rec.event.type == "JobProgressed":
        return
    jobs_log.info(
        "job %s: %s (version %d)",
        rec.stream_id,
        rec.event.type,
        rec.version,
        extra={"job_id": rec.stream_id, "event": rec.event.type, "seq": rec.seq},
    )
