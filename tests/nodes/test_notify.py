"""Prompt propagation on PostgreSQL: each append NOTIFYs in its own transaction and every
node LISTENs, so another node's change is caught up at once — here with the Tick's polling
set to a minute, so that nothing else could have brought it. A lost LISTEN connection is made
again, and the news flows again."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pytest

from silverexport import ExportRequest, JobStatus
from silverexport.nodes.postgres_listen import APPLICATION_NAME
from tests.actors.conftest import GatedWriter, transfer_rows, wait_until

PROMPT = 2.0  # SPEC §8: cancel stops the export within 2 s; a new job is visible within 2 s
TRANSFERS = ExportRequest(dataset="token_transfers", format="csv")


@pytest.fixture
def nodes(tmp_path, postgres_url, monkeypatch, open_system):
    """Two systems on one PostgreSQL log and one shared store, polling only once a minute."""
    shared = tmp_path / "shared"
    monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", postgres_url)
    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", shared.as_uri())
    writer = GatedWriter()

    def node(name: str):
        system = open_system(
            tmp_path / name,
            node_id=name,
            catch_up_interval_seconds=60,
            expiry_interval_seconds=60,
            export_fn=writer,
        )
        system.store.ingest("token_transfers", transfer_rows(50))
        return system

    a, b = node("a"), node("b")
    wait_listening(postgres_url, (a, b))  # a node opens before its listener's thread connects
    yield a, b, writer, shared
    writer.gate.set()


def listeners(url: str) -> set[tuple[int, datetime]]:
    """This database's backends that have LISTENed (their last query; not their state, which
    leaves 'idle' while they take in a NOTIFY), each named by its pid and its start (a pid
    alone may come again), and only this database's: the server is the session's."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database() AND starts_with(query, 'LISTEN ')",
            [APPLICATION_NAME],
        ).fetchall()
    return set(rows)


def wait_listening(url: str, systems, *, besides=frozenset()) -> set[tuple[int, datetime]]:
    """Waits until each system LISTENs on a backend not among `besides` and has asked for the
    catch-up of the time before, so that news from then on can only come by NOTIFY."""

    def ready():
        found = listeners(url) - besides
        if len(found) == len(systems) and all(s._wakeup.listening.is_set() for s in systems):
            return found
        return None

    return wait_until(ready, what=f"{len(systems)} nodes listening on new backends")


def assert_cancel_reaches_the_other(a, b, writer, shared) -> None:
    job_id = a.submit(TRANSFERS).job_id
    assert writer.started.wait(PROMPT)
    b.cancel(job_id)
    wait_until(
        lambda: (
            a.cached_status(job_id) is not None
            and a.cached_status(job_id).status is JobStatus.CANCELLED
        ),
        timeout=PROMPT,
        what="node a told of the cancel",
    )
    wait_until(
        lambda: not list(shared.glob(f"{job_id}*")), timeout=PROMPT, what="a's partial removed"
    )
    wait_until(lambda: a.slots.usage().exports == 0, timeout=PROMPT, what="a slot")


def test_a_cancel_on_one_node_stops_the_export_on_the_other_at_once(nodes):
    assert_cancel_reaches_the_other(*nodes)


def test_a_job_made_on_one_node_is_held_by_the_other_at_once(nodes):
    a, b, writer, _ = nodes
    writer.gate.set()
    job_id = b.submit(TRANSFERS).job_id
    wait_until(lambda: a.cached_status(job_id), timeout=PROMPT, what="a caught up")
    assert a.wait(job_id, timeout=30).status is JobStatus.COMPLETED


def test_a_lost_listen_connection_is_made_again(nodes, postgres_url):
    a, b, writer, shared = nodes
    before = listeners(postgres_url)
    assert len(before) == 2
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
            [[pid for pid, _ in before]],
        ).fetchall()
    assert killed == [(True,), (True,)]
    wait_listening(postgres_url, (a, b), besides=before)
    assert_cancel_reaches_the_other(a, b, writer, shared)
