"""The job views a process answers from memory, without a query or a thread hop.

Active jobs (queued, running) are all held: the supervisor publishes every change to them.
Finished jobs are held only as a bounded cache of the most recent, so memory does not grow
with finished jobs (SPEC §5); the persisted views answer for the rest. A finished job read
from the views is cached too, so a client polling an old job (or downloading it again and
again) is answered on the event loop like a new one, not by a query per request.

A view read from the views may be overtaken while it is read: only an expiry can follow a
finished job, so a read one is kept only if no expiry was published while it was being read
(an expired view is final and always kept). Every later change is published and replaces it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from .model import JobStatus, JobView

RECENT_VIEWS = 1024  # finished jobs' views kept in memory; older ones come from the views


class JobViewCache:
    def __init__(self, recent_views: int = RECENT_VIEWS):
        self.recent_views = recent_views
        self.active: dict[str, JobView] = {}  # queued and running jobs, as last published
        self.recent: OrderedDict[str, JobView] = OrderedDict()  # a few finished ones
        self.changed = threading.Condition()  # notified on every publish
        self.expiries = 0  # expired views published so far (see `remember`)

    def get(self, job_id: str) -> JobView | None:
        return self.active.get(job_id) or self.recent.get(job_id)

    def publish(self, view: JobView) -> None:
        """The supervisor's news of a job: it replaces whatever was held."""
        with self.changed:
            job_id = view.job_id
            if view.status.terminal:
                self.active.pop(job_id, None)
                if view.status is JobStatus.EXPIRED:
                    self.expiries += 1
                self._keep_recent(view)
            else:
                self.recent.pop(job_id, None)
                self.active[job_id] = view
            self.changed.notify_all()

    def read_through(self, read: Callable[[], JobView | None]) -> JobView | None:
        """`read()` (the persisted view); a finished one is kept, when nothing overtook it."""
        expiries = self.expiries
        view = read()
        if view is None or not view.status.terminal:
            return view
        with self.changed:
            fresh = view.status is JobStatus.EXPIRED or self.expiries == expiries
            if fresh and self.get(view.job_id) is None:
                self._keep_recent(view)
        return view

    def _keep_recent(self, view: JobView) -> None:
        self.recent[view.job_id] = view
        self.recent.move_to_end(view.job_id)
        while len(self.recent) > self.recent_views:
            self.recent.popitem(last=False)
