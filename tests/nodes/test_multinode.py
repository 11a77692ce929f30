"""Several real `serve` nodes on one PostgreSQL event log and one shared export directory
(SPEC §8 "Several nodes"): any node answers for any job, a dead node's jobs move on, cancel
reaches the node running the export, idempotency holds across nodes, and a node that could not
renew its lease in time cannot finish a job another node took over.

Timings the SPEC promises (2 s, LEASE_SECONDS + 10 s) are the deadlines of the waits; exports
are slowed to a known pace (tests/reliability/slow_serve.py) so that a node can be killed,
paused or cancelled while it runs one."""

from __future__ import annotations

import hashlib
import threading

import pytest

from silverexport.silver.writers import Filters, export_to_file
from tests.reliability.multinode import Cluster, wait_for
from tests.reliability.serve_process import ServeProcess

LEASE = 2.0
TRANSFERS = {"dataset": "token_transfers", "format": "csv"}
ROWS = 2000  # 20 batches of 100 rows at 0.2 s: a slowed export runs about 4 s


@pytest.fixture
def cluster(tmp_path, postgres_url):
    with Cluster(tmp_path / "cluster", postgres_url, lease_seconds=LEASE) as made:
        made.seed()
        yield made


@pytest.fixture
def slow_cluster(tmp_path, postgres_url):
    with Cluster(
        tmp_path / "cluster",
        postgres_url,
        lease_seconds=LEASE,
        slow_exports=True,
        batch_rows=100,
        batch_seconds=0.2,
    ) as made:
        made.seed()
        yield made


def reference_sha256(cluster: Cluster, tmp_path) -> str:
    """The same export run straight from the Silver rows, uninterrupted."""
    path = tmp_path / "reference.csv"
    return export_to_file(
        cluster.silver, "token_transfers", "csv", path, filters=Filters(), limit=100_000
    ).sha256


def submit(node, body=TRANSFERS, **headers) -> dict:
    status, job = node.client().json("POST", "/v1/export/dataset", body, headers=headers)
    assert status == 202, job
    return job


def running_with_progress(job: dict) -> bool:
    return job["status"] == "running" and (job["rows"] or 0) > 0


def starts(cluster: Cluster, job_id: str) -> list[str]:
    """Who started each attempt (JobStarted's owner), as the log says."""
    return [e["data"]["owner"] for e in cluster.events("b", job_id) if e["type"] == "JobStarted"]


def file_name(cluster: Cluster, job_id: str) -> str:
    (done,) = [e for e in cluster.events("b", job_id) if e["type"] == "JobCompleted"]
    return done["data"]["file_name"]


def files_of(cluster: Cluster, job_id: str) -> list[str]:
    return sorted(p.name for p in cluster.shared.iterdir() if p.name.startswith(job_id))


def test_a_job_made_on_one_node_is_answered_and_downloaded_by_another(cluster, tmp_path):
    a, b = cluster.start_all(["a", "b"])
    job_id = submit(a)["job_id"]
    on_b = cluster.wait_job("b", job_id, timeout=2.0, done=lambda j: True)  # SPEC: within 2 s
    assert on_b["job_id"] == job_id
    done = cluster.wait_job("b", job_id)
    assert done["status"] == "completed", done
    downloads = {}
    for node in (a, b):
        status, headers, body = node.client().request("GET", f"/v1/export/jobs/{job_id}/download")
        assert status == 200, (node.name, status, body[:200])
        downloads[node.name] = (body, headers.get("etag"))
    assert downloads["a"] == downloads["b"]  # the same bytes and the same ETag
    assert downloads["a"][1] is not None
    assert hashlib.sha256(downloads["a"][0]).hexdigest() == done["sha256"]
    assert done["sha256"] == reference_sha256(cluster, tmp_path)
    for node in (a, b):
        status, listed = node.client().json("GET", "/v1/export/jobs")
        assert status == 200 and job_id in [j["job_id"] for j in listed["jobs"]], node.name


def test_the_job_of_a_killed_node_is_finished_by_another_as_attempt_2(slow_cluster, tmp_path):
    cluster = slow_cluster
    cluster.start_all(["a", "b"])
    job_id = submit(cluster.nodes["a"])["job_id"]
    cluster.wait_job("b", job_id, running_with_progress)
    assert starts(cluster, job_id) == ["a"]
    cluster.kill("a")
    # SPEC §8: started again elsewhere within LEASE_SECONDS + 10 s.
    cluster.wait_job("b", job_id, lambda j: j["attempts"] == 2, timeout=LEASE + 10)
    done = cluster.wait_job("b", job_id)
    assert (done["status"], done["attempts"]) == ("completed", 2), done
    assert starts(cluster, job_id) == ["a", "b"]
    assert done["sha256"] == reference_sha256(cluster, tmp_path)
    status, _, body = (
        cluster.nodes["b"].client().request("GET", f"/v1/export/jobs/{job_id}/download")
    )
    assert status == 200 and hashlib.sha256(body).hexdigest() == done["sha256"]
    history = [e["type"] for e in cluster.events("b", job_id)]
    assert [t for t in history if t != "JobProgressed"] == [
        "JobRequested",
        "JobStarted",
        "JobFailed",
        "JobStarted",
        "JobCompleted",
    ]
    assert files_of(cluster, job_id) == [file_name(cluster, job_id)]  # no partial left


def test_cancel_through_one_node_stops_the_export_on_the_other(slow_cluster):
    cluster = slow_cluster
    cluster.start_all(["a", "b"])
    job_id = submit(cluster.nodes["a"])["job_id"]
    cluster.wait_job("b", job_id, running_with_progress)
    assert any(name.endswith(".part") for name in files_of(cluster, job_id))
    status, cancelled = cluster.nodes["b"].client().json("DELETE", f"/v1/export/jobs/{job_id}")
    assert status == 200 and cancelled["status"] == "cancelled", cancelled
    # SPEC §8: the export stops wherever it runs within 2 s, and its partial file goes.
    wait_for(lambda: files_of(cluster, job_id) == [], timeout=2.0, what="the partial removed")
    assert cluster.job("a", job_id)["status"] == "cancelled"
    # Node a stopped the export: it records nothing more for it.
    types = [e["type"] for e in cluster.events("a", job_id)]
    assert types[-1] == "JobCancelled" and "JobCompleted" not in types, types


def test_one_idempotency_key_sent_20_times_to_two_nodes_makes_one_job(cluster):
    a, b = cluster.start_all(["a", "b"])
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()
    go = threading.Barrier(20)

    def send(node) -> None:
        client = node.client()
        go.wait()
        answer = client.json(
            "POST", "/v1/export/dataset", TRANSFERS, headers={"Idempotency-Key": "same-key-1"}
        )
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send, args=((a, b)[i % 2],)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 20
    assert sorted(status for status, _ in answers) == [200] * 19 + [202], answers
    assert len({job["job_id"] for _, job in answers}) == 1
    for node in (a, b):
        listed = node.client().json("GET", "/v1/export/jobs")[1]["jobs"]
        assert len(listed) == 1, (node.name, listed)


def test_the_queued_jobs_of_a_killed_node_are_run_by_another(slow_cluster):
    cluster = slow_cluster
    cluster.env["SILVEREXPORT_MAX_CONCURRENT_EXPORTS"] = "1"
    cluster.start_all(["a", "b"])
    jobs = [submit(cluster.nodes["a"])["job_id"]]
    cluster.wait_job("b", jobs[0], running_with_progress)
    jobs.append(submit(cluster.nodes["a"])["job_id"])
    cluster.wait_job("b", jobs[1], running_with_progress)  # b, idle, took a's second
    jobs += [submit(cluster.nodes["a"])["job_id"] for _ in range(2)]
    assert [cluster.job("b", j)["status"] for j in jobs[2:]] == ["queued", "queued"]
    cluster.kill("a")
    for job_id in jobs:
        done = cluster.wait_job("b", job_id, timeout=LEASE + 10 + 4 * 10)
        assert done["status"] == "completed", done
    assert [cluster.job("b", j)["attempts"] for j in jobs] == [2, 1, 1, 1]
    assert [starts(cluster, j) for j in jobs] == [["a", "b"], ["b"], ["b"], ["b"]]


def test_a_node_that_could_not_renew_in_time_does_not_finish_the_job_taken_over(
    slow_cluster, tmp_path
):
    """A frozen node (SIGSTOP: a long pause, a network cut) loses its lease; the job moves to
    another node as attempt 2. Thawed, the first node still runs attempt 1 — and the log
    refuses its progress and completion (expected version), so it stops and leaves the job to
    the new attempt."""
    cluster = slow_cluster
    cluster.start_all(["a", "b"])
    job_id = submit(cluster.nodes["a"])["job_id"]
    cluster.wait_job("b", job_id, running_with_progress)
    cluster.pause("a")
    try:
        cluster.wait_job("b", job_id, lambda j: j["attempts"] == 2, timeout=LEASE + 10)
    finally:
        cluster.resume("a")
    done = cluster.wait_job("b", job_id)
    assert (done["status"], done["attempts"]) == ("completed", 2), done
    assert starts(cluster, job_id) == ["a", "b"]
    assert done["sha256"] == reference_sha256(cluster, tmp_path)
    events = cluster.events("b", job_id)
    assert [e["type"] for e in events].count("JobCompleted") == 1
    # Node a is serving again, sees the same job, and took its lease again.
    assert cluster.job("a", job_id)["status"] == "completed"
    wait_for(lambda: "taken again" in cluster.nodes["a"].log(), what="a's lease taken again")
    assert files_of(cluster, job_id) == [file_name(cluster, job_id)]


def test_a_second_live_node_with_the_same_id_refuses_to_start_with_one_line(cluster):
    cluster.start("a")
    twin = ServeProcess(
        cluster.root / "twin-data",
        cluster.root / "twin.log",
        env=cluster.node_env("a"),
    )
    try:
        assert twin.proc.wait(timeout=LEASE + 30) == 2
    finally:
        twin.close()
    lines = [line for line in twin.log_path.read_text().splitlines() if line.strip()]
    assert lines[-1] == (
        "silverexport: error: SILVEREXPORT_NODE_ID: node 'a' is already running "
        "(another live process renews its lease in the event log's database)"
    ), lines
    assert "Traceback" not in twin.log_path.read_text()
    status, _ = cluster.nodes["a"].client().json("GET", "/v1/export/jobs")
    assert status == 200  # the first node serves on


def test_a_node_restarted_at_once_after_sigkill_keeps_its_id_and_its_jobs_move_on(
    slow_cluster,
):
    cluster = slow_cluster
    cluster.start_all(["a"])
    job_id = submit(cluster.nodes["a"])["job_id"]
    cluster.wait_job("a", job_id, running_with_progress)
    cluster.kill("a")
    cluster.start("a")  # waits out the dead one's lease, then takes the id
    done = cluster.wait_job("a", job_id)
    assert (done["status"], done["attempts"]) == ("completed", 2), done


def test_nodes_sharing_a_postgresql_silver_database(tmp_path, postgres_url, postgres_server):
    """SPEC §8: the nodes share the Silver URL too; the file is the one SQLite would give."""
    silver_db = postgres_server.fresh_database()
    try:
        with Cluster(
            tmp_path / "cluster",
            postgres_url,
            lease_seconds=LEASE,
            silver_url=postgres_server.url(silver_db),
        ) as cluster:
            cluster.seed()
            a, b = cluster.start_all(["a", "b"])
            assert not (a.data_dir / "silver.db").exists()
            job_id = submit(a)["job_id"]
            done = cluster.wait_job("b", job_id)
            assert done["status"] == "completed", done
            status, _, body = b.client().request("GET", f"/v1/export/jobs/{job_id}/download")
            assert status == 200 and hashlib.sha256(body).hexdigest() == done["sha256"]
        reference = Cluster(tmp_path / "reference", postgres_url)
        reference.seed()  # the same rows in a SQLite store
        assert done["sha256"] == reference_sha256(reference, tmp_path)
    finally:
        postgres_server.drop_database(silver_db)


def test_a_node_stopped_cleanly_hands_its_running_job_over(slow_cluster, tmp_path):
    """SIGTERM: the node interrupts its export and deletes its lease as it exits, so another
    node starts the job again without waiting for a lease to run out."""
    cluster = slow_cluster
    cluster.start_all(["a", "b"])
    job_id = submit(cluster.nodes["a"])["job_id"]
    cluster.wait_job("b", job_id, running_with_progress)
    assert cluster.stop("a") == 0
    done = cluster.wait_job("b", job_id)
    assert (done["status"], done["attempts"]) == ("completed", 2), done
    assert starts(cluster, job_id) == ["a", "b"]
    assert done["sha256"] == reference_sha256(cluster, tmp_path)
