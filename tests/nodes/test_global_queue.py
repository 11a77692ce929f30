"""One queue across the nodes of a PostgreSQL log (SPEC §5 fair share, §8 several nodes): a
node with a free slot starts any queued job of the service, whichever node accepted it, in a
round-robin over tenants that every node works out alike from the log; the append of
JobStarted at the job's version lets exactly one node start each attempt.

Real `serve` processes (tests/reliability/multinode.py), each with one export slot; exports
are paced (tests/reliability/slow_serve.py) so that a node is busy while the test looks."""

from __future__ import annotations

import threading

import pytest

from tests.reliability.multinode import Cluster, wait_for
from tests.reliability.serve_process import ALICE, BOB

TRANSFERS = {"dataset": "token_transfers", "format": "csv"}


def paced_cluster(tmp_path, postgres_url, batch_seconds: float) -> Cluster:
    cluster = Cluster(
        tmp_path / "cluster",
        postgres_url,
        lease_seconds=2.0,
        slow_exports=True,
        batch_rows=100,
        batch_seconds=batch_seconds,  # 2,000 rows: 20 batches
        env={"SILVEREXPORT_MAX_CONCURRENT_EXPORTS": "1"},
    )
    cluster.seed()
    return cluster


@pytest.fixture
def held(tmp_path, postgres_url):
    """Exports of about 10 s: the slots stay full while a test looks (it cancels at the end)."""
    with paced_cluster(tmp_path, postgres_url, batch_seconds=0.5) as cluster:
        yield cluster


def submit(cluster: Cluster, node: str, headers: dict = ALICE) -> str:
    status, job = cluster.nodes[node].client(headers).json("POST", "/v1/export/dataset", TRANSFERS)
    assert status == 202, job
    return job["job_id"]


def job(cluster: Cluster, node: str, job_id: str, headers: dict = ALICE) -> dict:
    return cluster.job(node, job_id, headers)


def events(cluster: Cluster, node: str, job_id: str, headers: dict = ALICE) -> list[dict]:
    status, body = (
        cluster.nodes[node].client(headers).json("GET", f"/v1/export/jobs/{job_id}/events")
    )
    assert status == 200, body
    return body["events"]


def started(cluster: Cluster, job_id: str, headers: dict = ALICE) -> list[tuple[int, str]]:
    """(seq, owner) of each JobStarted of the job, as the log says."""
    return [
        (e["seq"], e["data"]["owner"])
        for e in events(cluster, "a", job_id, headers)
        if e["type"] == "JobStarted"
    ]


def running_on(cluster: Cluster, job_id: str, headers: dict = ALICE) -> str | None:
    """The node running the job (as node a answers), or None while it is not running."""
    if job(cluster, "a", job_id, headers)["status"] != "running":
        return None
    return started(cluster, job_id, headers)[-1][1]


def finished(cluster: Cluster, job_id: str, headers: dict) -> dict | None:
    view = job(cluster, "b", job_id, headers)
    return view if view["status"] in ("completed", "failed", "cancelled") else None


def positions(cluster: Cluster, node: str, jobs: list[tuple[str, dict]]) -> list[int | None]:
    return [job(cluster, node, j, h)["queue_position"] for j, h in jobs]


def cancel_all(cluster: Cluster, jobs: list[tuple[str, dict]]) -> None:
    for job_id, headers in jobs:
        cluster.nodes["a"].client(headers).json("DELETE", f"/v1/export/jobs/{job_id}")


def test_jobs_sent_to_a_busy_node_are_started_by_an_idle_one(held):
    held.start_all(["a", "b"])
    first = submit(held, "a")
    assert wait_for(lambda: running_on(held, first), what="a's only slot taken") == "a"
    second, third = submit(held, "a"), submit(held, "a")
    # Node a is full; b, idle, takes the next of a's queue.
    assert wait_for(lambda: running_on(held, second), what="b to start it") == "b"
    assert job(held, "b", third)["status"] == "queued"
    for node in ("a", "b"):
        wait_for(lambda n=node: positions(held, n, [(third, ALICE)]) == [1], what=node)
    cancel_all(held, [(first, ALICE), (second, ALICE)])
    # A slot freed anywhere starts the last one, once.
    wait_for(lambda: running_on(held, third), what="the third job started")
    assert len(started(held, third)) == 1
    cancel_all(held, [(third, ALICE)])


def test_one_tenant_s_single_job_is_not_held_behind_another_s_backlog_on_another_node(held):
    held.start_all(["a", "b"])
    backlog = [submit(held, "a")]
    wait_for(lambda: running_on(held, backlog[0]), what="a busy")
    backlog.append(submit(held, "a"))
    wait_for(lambda: running_on(held, backlog[1]), what="b busy with alice's second")
    backlog += [submit(held, "a") for _ in range(4)]
    single = submit(held, "b", BOB)
    # Round-robin across the service: bob's job waits for one of alice's starts, not four.
    # (Each node answers once it has read the other's last job: NOTIFY, milliseconds.)
    queued = [(j, ALICE) for j in backlog[2:]] + [(single, BOB)]
    for node in ("a", "b"):
        wait_for(lambda n=node: positions(held, n, queued) == [1, 3, 4, 5, 2], what=node)
    cancel_all(held, [(backlog[0], ALICE)])  # a slot frees: alice's next starts
    wait_for(lambda: running_on(held, backlog[2]), what="alice's third started")
    for node in ("a", "b"):
        wait_for(lambda n=node: job(held, n, single, BOB)["queue_position"] == 1, what=node)
    cancel_all(held, [(backlog[1], ALICE)])  # and the next slot is bob's
    wait_for(lambda: running_on(held, single, BOB), what="bob's job started")
    assert job(held, "a", backlog[3])["status"] == "queued"
    cancel_all(held, [(j, ALICE) for j in backlog[2:]] + [(single, BOB)])


def test_queue_positions_agree_on_every_node(held):
    held.start_all(["a", "b", "c"])
    fillers = [submit(held, node) for node in ("a", "b", "c")]
    for filler in fillers:
        wait_for(lambda f=filler: running_on(held, f), what="every slot taken")
    queued = [
        (submit(held, "a"), ALICE),  # alice's oldest: first
        (submit(held, "b", BOB), BOB),  # bob's first, after alice's
        (submit(held, "a"), ALICE),
        (submit(held, "c"), ALICE),
        (submit(held, "c", BOB), BOB),
    ]
    expected = [1, 2, 3, 5, 4]  # alice, bob, alice, bob, alice
    for node in ("a", "b", "c"):
        wait_for(lambda n=node: positions(held, n, queued) == expected, what=f"{node} to agree")
    for node in ("a", "b", "c"):
        assert positions(held, node, queued) == expected  # and it stays so: nothing moved
        client = held.nodes[node].client(BOB)
        listed = client.json("GET", "/v1/export/jobs?status=queued")[1]["jobs"]
        assert sorted(j["queue_position"] for j in listed) == [2, 4], node
    cancel_all(held, [(f, ALICE) for f in fillers] + queued)


def test_no_job_runs_twice_with_24_jobs_sent_to_3_nodes_at_once(tmp_path, postgres_url):
    """Every node races for every queued job; the log lets one start each."""
    with paced_cluster(tmp_path, postgres_url, batch_seconds=0.02) as cluster:
        cluster.start_all(["a", "b", "c"])
        jobs: list[tuple[str, dict]] = []
        lock = threading.Lock()
        go = threading.Barrier(6)

        def send(node: str, headers: dict) -> None:
            client = cluster.nodes[node].client(headers)
            go.wait()
            for _ in range(4):
                status, made = client.json("POST", "/v1/export/dataset", TRANSFERS)
                assert status == 202, made
                with lock:
                    jobs.append((made["job_id"], headers))

        threads = [
            threading.Thread(target=send, args=(node, headers))
            for node in ("a", "b", "c")
            for headers in (ALICE, BOB)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(jobs) == 24
        for job_id, headers in jobs:
            done = wait_for(
                lambda j=job_id, h=headers: finished(cluster, j, h), 120, f"job {job_id}"
            )
            assert (done["status"], done["attempts"]) == ("completed", 1), done
            types = [e["type"] for e in events(cluster, "c", job_id, headers)]
            assert types.count("JobStarted") == 1 and types.count("JobCompleted") == 1, types
        # Every node had a free slot while jobs were queued, so every node started some.
        owners = {owner for j, h in jobs for _, owner in started(cluster, j, h)}
        assert owners == {"a", "b", "c"}, owners
