"""The liveness port's contract, run against both adapters (STYLE 12): the lock file beside a
SQLite log, the lease in the PostgreSQL log's database. Holders in other processes are real
child processes, killed by pid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from silverexport.nodes import Liveness, NodeIdInUse
from silverexport.nodes.flock import FlockLiveness
from tests.actors.conftest import wait_until
from tests.reliability.serve_process import ROOT

LEASE = 2.0


class Adapter:
    def __init__(self, kind: str, where: str):
        self.kind, self.where = kind, where
        self.held: list[Liveness] = []
        self.children: list[subprocess.Popen] = []

    def take(self, node_id: str) -> Liveness:
        if self.kind == "flock":
            made: Liveness = FlockLiveness(Path(self.where), node_id)
        else:
            from silverexport.nodes.postgres_lease import PostgresLease

            made = PostgresLease(self.where, node_id, lease_seconds=LEASE)
        self.held.append(made)
        return made

    def take_elsewhere(self, node_id: str) -> subprocess.Popen:
        """The identity held by another process (a node on another machine, for the lease)."""
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.nodes.holder",
                self.kind,
                self.where,
                node_id,
                str(LEASE),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.children.append(child)
        assert child.stdout.readline().strip() == "held"
        return child

    def close(self) -> None:
        for child in self.children:
            child.kill()
            child.wait()
        for held in self.held:
            held.release()


@pytest.fixture(params=["flock", "postgres"])
def adapter(request, tmp_path):
    if request.param == "flock":
        made = Adapter("flock", str(tmp_path / "owners"))
    else:
        made = Adapter("postgres", request.getfixturevalue("postgres_url"))
    yield made
    made.close()


def test_a_holder_is_alive_to_itself_and_to_others(adapter):
    a = adapter.take("node-a")
    b = adapter.take("node-b")
    assert isinstance(a, Liveness)
    assert a.owner_id == "node-a"
    assert a.is_alive("node-a") and a.is_alive("node-b") and b.is_alive("node-a")


def test_an_id_nobody_holds_is_dead(adapter):
    a = adapter.take("node-a")
    assert not a.is_alive("node-z")
    assert not a.is_alive(None)


def test_a_second_holder_of_one_id_is_refused_with_one_line_naming_the_setting(adapter):
    a = adapter.take("node-a")
    with pytest.raises(NodeIdInUse) as refused:
        adapter.take("node-a")
    message = str(refused.value)
    assert message.startswith("SILVEREXPORT_NODE_ID: node 'node-a' is already running")
    assert "\n" not in message
    assert a.is_alive("node-a")
    assert adapter.take("node-b").is_alive("node-a")  # the first one still holds it


def test_a_released_id_is_dead_at_once_and_can_be_taken_again(adapter):
    a = adapter.take("node-a")
    b = adapter.take("node-b")
    a.release()
    assert not b.is_alive("node-a")  # a clean stop: no lease to wait out
    again = adapter.take("node-a")
    assert b.is_alive("node-a") and again.is_alive("node-b")


def test_a_holder_in_another_process_is_alive_until_it_is_killed(adapter):
    b = adapter.take("node-b")
    child = adapter.take_elsewhere("node-a")
    assert b.is_alive("node-a")
    child.kill()
    child.wait()
    # The lock goes with the process; the lease runs out: within a lease, plus the margin.
    wait_until(lambda: not b.is_alive("node-a"), timeout=LEASE + 10, what="node-a dead")


def test_the_id_of_a_killed_holder_can_be_taken_by_its_successor(adapter):
    """A node restarted at once after a SIGKILL keeps its id: it takes it over (on PostgreSQL
    once the dead one's lease runs out), rather than being refused as a second live node."""
    child = adapter.take_elsewhere("node-a")
    child.kill()
    child.wait()
    successor = adapter.take("node-a")
    assert successor.is_alive("node-a")
    assert adapter.take("node-b").is_alive("node-a")
