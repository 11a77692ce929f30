"""FairQueue: the jobs this process will start, round-robin across tenants (SPEC §5).

Each tenant's jobs wait in submission order; the tenants with jobs waiting take turns, one start
each, so one tenant's backlog delays another's job by at most one start per slot. The HTTP
threads read positions while the supervisor changes the queue, hence the lock.

JobQueue is what the supervisor needs of a queue: FairQueue for a process that runs only the
jobs it queues itself (the SQLite log's one serving process, a one-shot command), SharedQueue
(shared_queue.py) for the nodes of one PostgreSQL log, which start each other's jobs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection
from typing import Protocol

from ..events.views import State
from .job_book import QUEUED


class JobQueue(Protocol):
    def __len__(self) -> int: ...
    def __contains__(self, job_id: object) -> bool: ...
    def observe(self, state: State) -> None: ...
    def push(self, tenant: str, job_id: str) -> None: ...
    def put_back(self, tenant: str, job_id: str) -> None: ...
    def peek(self, skip: Collection[str] = ()) -> str | None: ...
    def take(self, job_id: str) -> None: ...
    def remove(self, job_id: str) -> None: ...
    def position(self, job_id: str) -> int | None: ...


class FairQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, deque[str]] = {}  # tenant -> its waiting jobs, oldest first
        self._turns: deque[str] = deque()  # tenants with jobs waiting, next to start first
        self._tenant_of: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._tenant_of)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._tenant_of

    def push(self, tenant: str, job_id: str) -> None:
        """Queue a job at the end of its tenant's line (a tenant new to the queue goes last)."""
        with self._lock:
            if job_id in self._tenant_of:
                return
            self._tenant_of[job_id] = tenant
            line = self._jobs.get(tenant)
            if line is None:
                line = self._jobs[tenant] = deque()
                self._turns.append(tenant)
            line.append(job_id)

    def put_back(self, tenant: str, job_id: str) -> None:
        """Return the job just popped to where it was: first in its tenant's line, its
        tenant's turn next (its start could not be recorded, so it never left)."""
        with self._lock:
            if job_id in self._tenant_of:
                return
            self._tenant_of[job_id] = tenant
            line = self._jobs.get(tenant)
            if line is None:
                line = self._jobs[tenant] = deque()
            else:
                self._turns.remove(tenant)
            self._turns.appendleft(tenant)
            line.appendleft(job_id)

    def observe(self, state: State) -> None:
        """A job's state moved (here or elsewhere): one that no longer waits leaves."""
        if state["status"] != QUEUED:
            self.remove(state["job_id"])

    def peek(self, skip: Collection[str] = ()) -> str | None:
        """The job that starts next; None if none, or if it is one of `skip` (tried already:
        it went to the back of its line, so every other job has had its turn)."""
        with self._lock:
            job_id = self._jobs[self._turns[0]][0] if self._turns else None
            return None if job_id in skip else job_id

    def take(self, job_id: str) -> None:
        """Take the job peek just gave, to start it: the head, as only the supervisor's
        thread changes the queue."""
        self.pop()

    def pop(self) -> str | None:
        """Take the job that starts next; its tenant's turn moves to the back."""
        with self._lock:
            if not self._turns:
                return None
            tenant = self._turns.popleft()
            line = self._jobs[tenant]
            job_id = line.popleft()
            del self._tenant_of[job_id]
            if line:
                self._turns.append(tenant)
            else:
                del self._jobs[tenant]
            return job_id

    def remove(self, job_id: str) -> None:
        """Drop a job that no longer waits (cancelled, started elsewhere); turns stay put."""
        with self._lock:
            tenant = self._tenant_of.pop(job_id, None)
            if tenant is None:
                return
            line = self._jobs[tenant]
            line.remove(job_id)
            if not line:
                del self._jobs[tenant]
                self._turns.remove(tenant)

    def position(self, job_id: str) -> int | None:
        """1 + the number of queued jobs that start before this one; None if not queued here."""
        with self._lock:
            tenant = self._tenant_of.get(job_id)
            if tenant is None:
                return None
            ahead = self._jobs[tenant].index(job_id)  # its own tenant's jobs before it
            ours = self._turns.index(tenant)
            position = 1 + ahead
            for turn, other in enumerate(self._turns):
                if turn != ours:
                    # Each other tenant starts one job per round, and one more before this job
                    # when its turn in a round comes before ours.
                    position += min(len(self._jobs[other]), ahead + (turn < ours))
            return position
