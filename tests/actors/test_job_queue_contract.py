"""The JobQueue port's contract, run against both adapters: FairQueue (one process's queue,
driven by its supervisor's push, take and remove) and SharedQueue (every node's one order,
driven by the states read from the log). Each adapter's own rules are in test_fair_share.py
and test_shared_queue.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from silverexport.actors.fair_queue import FairQueue, JobQueue
from silverexport.actors.shared_queue import SharedQueue

from .test_shared_queue import Log


class OwnQueue:
    """A FairQueue as the supervisor drives it."""

    def __init__(self) -> None:
        self.queue = FairQueue()

    def request(self, tenant: str, job_id: str) -> None:
        self.queue.push(tenant, job_id)

    def start(self, job_id: str) -> None:
        self.queue.take(job_id)

    def cancel(self, job_id: str) -> None:
        self.queue.remove(job_id)


class LogFedQueue:
    """A SharedQueue as a node feeds it: only through the states of the log."""

    def __init__(self) -> None:
        self.queue, self.log = SharedQueue(), Log()
        self.log.queues.append(self.queue)

    def request(self, tenant: str, job_id: str) -> None:
        self.log.request(tenant, job_id)

    def start(self, job_id: str) -> None:
        self.log.start(job_id)

    def cancel(self, job_id: str) -> None:
        self.log.finish(job_id, "cancelled")


ADAPTERS: list[Callable[[], OwnQueue | LogFedQueue]] = [OwnQueue, LogFedQueue]


@pytest.fixture(params=ADAPTERS, ids=lambda a: a.__name__)
def jobs(request) -> OwnQueue | LogFedQueue:
    return request.param()


def drain(jobs: OwnQueue | LogFedQueue) -> list[str]:
    """Start the head until nothing is queued, checking each position on the way."""
    queue: JobQueue = jobs.queue
    order = []
    while (job := queue.peek()) is not None:
        assert queue.position(job) == 1
        jobs.start(job)
        order.append(job)
    assert len(queue) == 0
    return order


def test_tenants_take_turns_and_positions_predict_the_order(jobs):
    for job in ("a1", "a2", "a3", "a4"):
        jobs.request("alice", job)
    jobs.request("bob", "b1")
    jobs.request("carol", "c1")
    jobs.request("bob", "b2")
    expected = ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    assert [jobs.queue.position(j) for j in expected] == list(range(1, 8))
    assert "a2" in jobs.queue and len(jobs.queue) == 7
    jobs.cancel("a2")  # alice's next job takes its place in the rounds
    expected = ["a1", "b1", "c1", "a3", "b2", "a4"]
    assert [jobs.queue.position(j) for j in expected] == list(range(1, 7))
    assert jobs.queue.position("a2") is None and "a2" not in jobs.queue
    assert drain(jobs) == expected
    assert jobs.queue.peek() is None


def test_a_tenant_new_to_the_queue_waits_one_round_at_most(jobs):
    for i in range(100):
        jobs.request("big", f"big{i}")
    jobs.start(jobs.queue.peek())
    jobs.request("small", "s1")
    assert jobs.queue.position("s1") == 2
    assert drain(jobs)[:2] == ["big1", "s1"]
