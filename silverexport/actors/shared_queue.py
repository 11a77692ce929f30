"""SharedQueue: every queued job of a service of several nodes, in one order all nodes agree on.

Each node holds the active jobs of the whole shared log (JobBook), so each can work out the
same start order from them alone, with no talk between nodes beyond the log: round-robin over
the tenants with jobs queued, each tenant's own in the order they were requested. A tenant's
turn comes by the later of its oldest queued job's `created_at` and its latest start (the
newest `started_at` of its jobs, on any node): a start sends its tenant to the back, and a
tenant new to the queue goes last, as in FairQueue; ties go by the oldest queued job. Any node
with a free slot starts the head of this order by appending JobStarted at the job's version;
when two race, the log refuses one (ConcurrencyError) and the loser, caught up, takes the next.

A tenant's latest start is kept while it has jobs queued or running, and forgotten after: its
next job is requested later than that start anyway. A node that opens while others run knows
only the starts of jobs still running, so until a tenant's next start it may place that tenant
a turn early (its starts still go through the log's versions: nothing starts twice).

Positions follow from the same order, as if no job finished in between (as FairQueue's do).
Nodes that have read the log to the same seq give the same positions. The supervisor feeds
this queue from every state change it reads (`observe`); HTTP threads read positions, hence
the lock.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Collection

from ..events.views import State
from .job_book import QUEUED, RUNNING

# (created_seq, job_id, created_at): a tenant's line sorts by request order
_Entry = tuple[int, str, str]


class SharedQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[str, list[_Entry]] = {}  # tenant -> its queued jobs, oldest first
        self._entry: dict[str, tuple[str, _Entry]] = {}  # job_id -> (tenant, entry)
        self._running: dict[str, str] = {}  # job_id -> tenant, for the jobs running anywhere
        self._last_start: dict[str, str] = {}  # tenant -> its newest started_at seen
        self._turns: list[str] | None = None  # the tenants in start order (None: work it out)

    def __len__(self) -> int:
        return len(self._entry)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entry

    # -- fed from the log ------------------------------------------------------------------

    def observe(self, state: State) -> None:
        """A job's state as the log now says (any node's job): queued, running or over."""
        job_id, status, tenant = state["job_id"], state["status"], state["tenant"]
        with self._lock:
            self._turns = None
            self._drop(job_id)
            self._running.pop(job_id, None)
            started = state["started_at"] or ""
            if started > self._last_start.get(tenant, ""):
                self._last_start[tenant] = started
            if status == QUEUED:
                entry = (state["created_seq"], job_id, state["created_at"] or "")
                bisect.insort(self._lines.setdefault(tenant, []), entry)
                self._entry[job_id] = (tenant, entry)
            elif status == RUNNING:
                self._running[job_id] = tenant
            elif tenant not in self._lines and tenant not in self._running.values():
                self._last_start.pop(tenant, None)  # nothing of it active: see the docstring

    def remove(self, job_id: str) -> None:
        """Forget a job that no longer waits (its state says so too; observe does the same)."""
        with self._lock:
            self._turns = None
            self._drop(job_id)

    def _drop(self, job_id: str) -> None:
        held = self._entry.pop(job_id, None)
        if held is None:
            return
        tenant, entry = held
        line = self._lines[tenant]
        del line[bisect.bisect_left(line, entry)]
        if not line:
            del self._lines[tenant]

    # -- what a FairQueue's owner does, which the log does here ----------------------------

    def push(self, tenant: str, job_id: str) -> None:
        """Nothing: a job is here while the log says it is queued (see observe)."""

    def put_back(self, tenant: str, job_id: str) -> None:
        """Nothing: a job whose start was not recorded never left its place."""

    def take(self, job_id: str) -> None:
        """Nothing: the job leaves when its JobStarted (ours or another node's) is read."""

    # -- the order -------------------------------------------------------------------------

    def _order(self) -> list[str]:
        """The tenants with jobs queued, the next to start first (lock held)."""
        if self._turns is None:

            def turn(tenant: str) -> tuple[str, int]:
                created_seq, _, created_at = self._lines[tenant][0]
                return max(created_at, self._last_start.get(tenant, "")), created_seq

            self._turns = sorted(self._lines, key=turn)
        return self._turns

    def peek(self, skip: Collection[str] = ()) -> str | None:
        """The job that starts next, passing over those in `skip` (tried already); None if
        no other job is queued."""
        with self._lock:
            turns = self._order()
            depth = max((len(self._lines[t]) for t in turns), default=0)
            for round_ in range(depth):
                for tenant in turns:
                    line = self._lines[tenant]
                    if round_ < len(line) and line[round_][1] not in skip:
                        return line[round_][1]
            return None

    def position(self, job_id: str) -> int | None:
        """1 + the number of queued jobs that start before this one; None if not queued."""
        with self._lock:
            held = self._entry.get(job_id)
            if held is None:
                return None
            tenant, entry = held
            ahead = bisect.bisect_left(self._lines[tenant], entry)  # its own tenant's, first
            turns = self._order()
            ours = turns.index(tenant)
            position = 1 + ahead
            for turn, other in enumerate(turns):
                if turn != ours:
                    # One start per tenant per round, and one more before this job when that
                    # tenant's turn in a round comes before ours.
                    position += min(len(self._lines[other]), ahead + (turn < ours))
            return position
