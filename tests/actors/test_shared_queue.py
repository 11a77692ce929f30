"""SharedQueue: the one start order that every node of a shared log works out from the states
it read (SPEC §5 across nodes). Real multi-node runs are in tests/nodes/test_global_queue.py;
here the order itself, fed the states a log would give."""

from __future__ import annotations

import itertools

from silverexport.actors.shared_queue import SharedQueue


class Log:
    """Job states as folding a log gives them: a clock and seqs that only go forward."""

    def __init__(self) -> None:
        self.seq = itertools.count(1)
        self.states: dict[str, dict] = {}
        self.queues: list[SharedQueue] = []

    def _now(self, seq: int) -> str:
        return f"2026-01-01T00:00:{seq // 1000:02d}.{seq % 1000:03d}Z"

    def _tell(self, state: dict) -> None:
        for queue in self.queues:
            queue.observe(dict(state))

    def request(self, tenant: str, job_id: str) -> None:
        seq = next(self.seq)
        self.states[job_id] = state = {
            "job_id": job_id,
            "tenant": tenant,
            "status": "queued",
            "created_seq": seq,
            "created_at": self._now(seq),
            "started_at": None,
        }
        self._tell(state)

    def start(self, job_id: str) -> None:
        state = self.states[job_id]
        state["status"], state["started_at"] = "running", self._now(next(self.seq))
        self._tell(state)

    def finish(self, job_id: str, status: str = "completed") -> None:
        self.states[job_id]["status"] = status
        self._tell(self.states[job_id])

    def retry(self, job_id: str) -> None:
        self.states[job_id]["status"] = "queued"  # JobFailed with will_retry
        self._tell(self.states[job_id])


def test_the_last_starter_goes_to_the_back_even_after_its_job_finished():
    """One slot in all: each start's job is over before the next start. The tenant that
    started last still waits behind the other, so a single job is not held behind a backlog."""
    log, queue = Log(), SharedQueue()
    log.queues.append(queue)
    for i in range(5):
        log.request("big", f"big{i}")
    log.start("big0")
    log.finish("big0")
    log.request("small", "s1")
    assert queue.position("s1") == 2  # after big's next, as a tenant new to the queue
    log.start(queue.peek())  # big1
    log.finish("big1")
    assert queue.peek() == "s1" and queue.position("s1") == 1


def test_every_node_fed_the_same_log_agrees_and_a_skipped_job_keeps_its_place():
    log = Log()
    nodes = [SharedQueue(), SharedQueue(), SharedQueue()]
    log.queues.extend(nodes)
    for i in range(6):
        log.request(("t1", "t2", "t3")[i % 3], f"j{i}")
        log.request("t1", f"k{i}")
    assert nodes[0].peek() == "j0"
    log.start("j0")
    assert nodes[1].peek() == "j1"  # t1 started last: t2 next
    log.start("j1")
    log.retry("j0")  # its attempt failed: queued again, t1 still the latest but one to start
    queued = [j for j, s in log.states.items() if s["status"] == "queued"]
    positions = [[node.position(j) for j in queued] for node in nodes]
    assert positions[0] == positions[1] == positions[2]
    assert sorted(positions[0]) == list(range(1, len(queued) + 1))
    # t3 has not started yet, then t1 (its retried job first), then t2.
    assert [nodes[2].peek(), nodes[2].position("j0"), nodes[2].position("j4")] == ["j2", 2, 3]
    assert nodes[2].peek(skip={"j2"}) == "j0"  # one that cannot start here is passed over
    assert nodes[2].peek() == "j2"  # and keeps its place


def test_a_tenant_forgotten_once_idle_comes_back_in_request_order():
    log, queue = Log(), SharedQueue()
    log.queues.append(queue)
    log.request("alice", "a1")
    log.start("a1")
    log.finish("a1")
    log.request("bob", "b1")
    log.request("alice", "a2")
    assert [queue.position("b1"), queue.position("a2")] == [1, 2]
