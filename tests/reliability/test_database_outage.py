"""The event log's database going away mid-run and coming back (SPEC §8), on a PostgreSQL
server of each test's own that it halts and resumes on the same port with the same data.

While it is down a node answers the reads it can (the jobs it holds), every write with 503 and
Retry-After, /healthz with 503 "degraded", never a 500; a running export finishes and its
outcome waits to be recorded; an open SSE stream waits. Once the server is back the node,
never restarted, records the outcome once, runs its queue, and every accepted job ends
completed with the right file; `verify` passes on the log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from silverexport.http import make_app
from silverexport.silver.store import SilverStore
from tests.http.conftest import KEYS, Gate, transfer_rows
from tests.http.liveserver import LiveServer
from tests.reliability.multinode import Cluster
from tests.reliability.outage import (
    CSV,
    DEADLINE,
    HookReceiver,
    Recording,
    StreamWatcher,
    all_finished,
    downloaded_sha256,
    health,
    submit,
    until,
)
from tests.reliability.serve_process import ServeProcess, child_env, cli


def assert_degraded(client: Recording, secret: str, part: str = "event_log") -> None:
    """/healthz says `part` is down (within about a second: an answer is kept that long),
    naming its setting, and no password anywhere."""
    document = until("/healthz degraded", lambda: degraded(client))
    assert document["status"] == "degraded"
    assert set(document["down"]) == {part}, document
    setting = {"event_log": "SILVEREXPORT_EVENT_LOG_URL", "silver_store": "SILVEREXPORT_SILVER_URL"}
    assert setting[part] in document["down"][part], document
    assert "\n" not in document["down"][part]
    assert secret not in json.dumps(document)


def degraded(client: Recording) -> dict | None:
    status, document = health(client)
    return document if status == 503 else None


def writes_are_refused(client: Recording, job_id: str) -> None:
    """Every write answers 503 (with Retry-After, checked by Recording): nothing recorded."""
    assert client.json("POST", "/v1/export/dataset", CSV)[0] == 503
    assert (
        client.json("POST", "/v1/export/dataset", CSV, headers={"Idempotency-Key": "k1"})[0] == 503
    )
    assert client.json("DELETE", f"/v1/export/jobs/{job_id}")[0] == 503
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["job.completed"]}
    assert client.json("POST", "/v1/webhooks", hook)[0] == 503


@pytest.mark.parametrize("halt", ["fast", "immediate"])  # an operator's stop, and a crash
def test_an_in_process_node_rides_out_a_database_restart(
    own_postgres, open_system, monkeypatch, halt
):
    url = own_postgres.url(own_postgres.fresh_database())
    monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", url)
    gate = Gate()
    system = open_system(
        max_concurrent_exports=1, export_fn=gate, api_keys=KEYS, webhook_allow_hosts="127.0.0.1"
    )
    system.store.ingest("token_transfers", transfer_rows(60))
    with LiveServer(make_app(system)) as base:
        client = Recording(base)
        gate.opened.set()  # one job done before the outage: its file stays downloadable
        [done] = submit(client, 1)
        until("the first job done", lambda: all_finished(client, [done]))
        done_sha256 = client.json("GET", f"/v1/export/jobs/{done}")[1]["sha256"]
        gate.opened.clear()
        gate.entered.clear()
        receiver = HookReceiver()  # deliveries owed during the outage are made after it
        hook = {"url": receiver.url, "events": ["job.completed"]}
        assert client.json("POST", "/v1/webhooks", hook)[0] == 201
        first, *queued = submit(client, 4)
        assert gate.entered.wait(DEADLINE)  # the first runs (held at the gate), three wait
        watcher = StreamWatcher(base, first)
        assert watcher.status == 200
        assert health(client)[0] == 200

        own_postgres.halt(halt)
        assert_degraded(client, own_postgres.password)
        writes_are_refused(client, queued[-1])
        # Reads of jobs the node holds answer; reads that need the database are 503.
        status, running = client.json("GET", f"/v1/export/jobs/{first}")
        assert (status, running["status"]) == (200, "running"), running
        status, waiting = client.json("GET", f"/v1/export/jobs/{queued[0]}")
        assert (status, waiting["status"], waiting["queue_position"]) == (200, "queued", 1)
        assert client.json("GET", "/v1/export/jobs")[0] == 503
        assert client.json("GET", f"/v1/export/jobs/{first}/events")[0] == 503
        assert client.request("GET", f"/v1/export/jobs/{queued[0]}/stream")[0] == 503
        assert client.request("GET", f"/v1/export/jobs/{'0' * 32}")[0] == 503
        assert downloaded_sha256(client, done) == done_sha256  # held in the node's cache
        status, _, page = client.request("GET", "/metrics")
        assert status == 200 and b"silverexport_http_requests" in page, page[:300]
        # The running export finishes while the database is away: its outcome waits.
        gate.opened.set()
        until("the outcome kept for a retry", lambda: system.supervisor.proxy().pending.get())
        assert_degraded(client, own_postgres.password)

        own_postgres.resume()
        until("/healthz ok again", lambda: health(client)[0] == 200)
        documents = until("every job finished", lambda: all_finished(client, [first, *queued]))
        for job_id, document in documents.items():
            assert document["status"] == "completed", document
            assert downloaded_sha256(client, job_id) == document["sha256"]
        # Recorded once: the retried append did not add a second outcome.
        kinds = [
            e["type"] for e in client.json("GET", f"/v1/export/jobs/{first}/events")[1]["events"]
        ]
        assert kinds == ["JobRequested", "JobStarted", "JobCompleted"], kinds
        # The stream opened before the outage waited through it and ends with the job.
        assert watcher.ended.wait(DEADLINE), watcher.events
        assert watcher.events[-1] == "JobCompleted", (watcher.events, watcher.error)
        watcher.close()
        # The node takes writes again, on new connections; the key refused while the database
        # was away recorded nothing, so it makes one job now.
        keyed = {"headers": {"Idempotency-Key": "k1"}}
        status, job = client.json("POST", "/v1/export/dataset", CSV, **keyed)
        assert status == 202, job
        again = client.json("POST", "/v1/export/dataset", CSV, **keyed)
        assert again == (200, again[1]) and again[1]["job_id"] == job["job_id"]
        receiver.wait_for({first, *queued})
        receiver.close()
        assert client.fives() == []
    done = cli("verify", env={**child_env(), "SILVEREXPORT_EVENT_LOG_URL": url})
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_serve_process_rides_out_a_database_restart(own_postgres, tmp_path: Path):
    url = own_postgres.url(own_postgres.fresh_database())
    data = tmp_path / "data"
    data.mkdir()
    with SilverStore(data / "silver.db") as store:  # enough rows that exports take a while
        store.ingest("token_transfers", transfer_rows(20_000))
    env = child_env(
        SILVEREXPORT_EVENT_LOG_URL=url,
        SILVEREXPORT_MAX_CONCURRENT_EXPORTS="1",
        SILVEREXPORT_CATCH_UP_INTERVAL_SECONDS="0.2",
        SILVEREXPORT_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
    )
    log_path = tmp_path / "serve.log"
    with ServeProcess(data, log_path, env=env) as server:
        client = Recording(server.wait_for_url())
        ids = submit(client, 8)
        own_postgres.halt()
        assert_degraded(client, own_postgres.password)
        # Mid-run: the jobs it holds still answer, and some were not over yet.
        held = [client.json("GET", f"/v1/export/jobs/{job_id}") for job_id in ids]
        assert all(status == 200 for status, _ in held), [(s, d.get("status", d)) for s, d in held]
        assert any(document["status"] in ("queued", "running") for _, document in held), held
        writes_are_refused(client, ids[-1])

        own_postgres.resume()
        until("/healthz ok again", lambda: health(client)[0] == 200)
        documents = until("every job finished", lambda: all_finished(client, ids))
        for job_id, document in documents.items():
            assert document["status"] == "completed", document
            assert downloaded_sha256(client, job_id) == document["sha256"]
        assert submit(client, 1)
        assert server.proc.poll() is None  # the same process throughout: no restart
        assert client.fives() == []
    served = log_path.read_text()
    assert "Traceback" not in served, served[-3000:]
    assert own_postgres.password not in served
    done = cli("verify", "--data-dir", str(data), env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_two_nodes_ride_out_a_database_restart_with_exports_running_on_both(own_postgres, tmp_path):
    url = own_postgres.url(own_postgres.fresh_database())
    with Cluster(
        tmp_path / "cluster",
        url,
        slow_exports=True,  # each export takes about 2 s: both nodes are mid-run at the halt
        env={
            "SILVEREXPORT_MAX_CONCURRENT_EXPORTS": "1",
            "SILVEREXPORT_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        },
    ) as cluster:
        cluster.seed()
        a, b = cluster.start_all(["a", "b"])
        pids = {a.pid, b.pid}
        clients = {node.name: Recording(node.url) for node in (a, b)}
        ids = submit(clients["a"], 3) + submit(clients["b"], 3)

        def running_on_both() -> bool:  # one slot per node: two running means one on each
            jobs = [clients["a"].json("GET", f"/v1/export/jobs/{job_id}")[1] for job_id in ids]
            return sum(job["status"] == "running" for job in jobs) >= 2

        until("an export running on each node", running_on_both)
        own_postgres.halt()
        for client in clients.values():
            assert_degraded(client, own_postgres.password)
            writes_are_refused(client, ids[-1])

        own_postgres.resume()
        for client in clients.values():
            until("/healthz ok again", lambda c=client: health(c)[0] == 200)
        documents = until("every job finished", lambda: all_finished(clients["b"], ids))
        for job_id, document in documents.items():
            assert document["status"] == "completed", document
            # Finished by the node that ran it: nobody was judged dead for the outage.
            assert document["attempts"] == 1, document
            for client in clients.values():  # downloadable from either node
                assert downloaded_sha256(client, job_id) == document["sha256"]
            kinds = [e["type"] for e in cluster.events("a", job_id)]
            assert kinds.count("JobCompleted") == 1, kinds
        assert {node.pid for node in (a, b)} == pids and a.alive() and b.alive()
        for client in clients.values():
            assert submit(client, 1)
            assert client.fives() == []
        for node in (a, b):
            assert "Traceback" not in node.log(), node.log()[-3000:]
    done = cli("verify", env={**child_env(), "SILVEREXPORT_EVENT_LOG_URL": url})
    assert done.returncode == 0, done.stdout + done.stderr


def test_healthz_names_the_silver_store_while_its_database_is_away(
    own_postgres, open_system, monkeypatch
):
    """The Silver store on PostgreSQL stops and starts again: /healthz says `silver_store`
    (the setting, no password) meanwhile, and is ok again after, the node never restarted;
    an export after that runs on a new connection."""
    url = own_postgres.url(own_postgres.fresh_database())
    monkeypatch.setenv("SILVEREXPORT_SILVER_URL", url)
    system = open_system(api_keys=KEYS)
    system.store.ingest("token_transfers", transfer_rows(60))
    with LiveServer(make_app(system)) as base:
        client = Recording(base)
        until("/healthz ok", lambda: health(client)[0] == 200)

        own_postgres.halt("fast")
        assert_degraded(client, own_postgres.password, "silver_store")
        own_postgres.resume()
        until("/healthz ok again", lambda: health(client)[0] == 200)
        [job] = submit(client, 1)
        documents = until("the export done", lambda: all_finished(client, [job]))
        assert documents[job]["status"] == "completed", documents
        assert documents[job]["rows"] == 60
        assert client.fives() == []
