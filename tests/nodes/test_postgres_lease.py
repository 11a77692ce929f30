"""The lease adapter beyond the contract: renewal keeps it alive past many leases, a lost
connection or a lost row does not end it, and the database's clock is the only one used."""

from __future__ import annotations

import psycopg
import pytest

from silverexport.nodes.postgres_lease import PostgresLease
from tests.actors.conftest import wait_until

LEASE = 1.5


@pytest.fixture
def leases(postgres_url):
    made: list[PostgresLease] = []

    def take(node_id: str, lease: float = LEASE) -> PostgresLease:
        lease_ = PostgresLease(postgres_url, node_id, lease_seconds=lease)
        made.append(lease_)
        return lease_

    yield take
    for lease_ in made:
        lease_.release()


def renewals(url: str, node_id: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT renewed_at FROM node_leases WHERE node_id = %s", [node_id]
        ).fetchone()
    return row[0] if row else None


def wait_renewed(url: str, node_id: str, times: int = 1) -> None:
    """Until the row's renewed_at moved `times` times (each beat moves it)."""
    seen = [renewals(url, node_id)]

    def moved() -> bool:
        now = renewals(url, node_id)
        if now is not None and now != seen[-1]:
            seen.append(now)
        return len(seen) > times

    wait_until(moved, what=f"{times} renewals of {node_id}")


def terminate_others(url: str) -> int:
    """pg_terminate_backend on every other connection to the database (a server restart, a
    network cut, as the connections see it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_renewals_keep_a_node_alive_for_many_leases(leases, postgres_url):
    leases("node-a")
    b = leases("node-b")
    wait_renewed(postgres_url, "node-a", times=6)  # 6 beats: two whole leases
    assert b.is_alive("node-a")


def test_a_lost_connection_is_made_again_and_the_lease_kept(leases, postgres_url):
    a, b = leases("node-a"), leases("node-b")
    assert terminate_others(postgres_url) >= 4  # both beats' and both askers' connections
    wait_renewed(postgres_url, "node-a", times=2)
    assert b.is_alive("node-a") and a.is_alive("node-b")


def test_a_lost_lease_row_is_taken_again_on_the_next_beat(leases, postgres_url):
    leases("node-a")
    b = leases("node-b")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM node_leases WHERE node_id = 'node-a'")
    assert not b.is_alive("node-a")
    wait_until(lambda: b.is_alive("node-a"), what="node-a's lease taken again")


def test_renewals_that_fail_are_not_fatal_and_meanwhile_nobody_is_judged_dead(
    leases, postgres_url, caplog
):
    """The database refuses every connection for a while (its connections cut, new ones
    refused): the heartbeat logs one line, keeps trying, and renews once it may connect
    again; meanwhile, and for one lease after, the node takes nobody's jobs on a guess."""
    a = leases("node-a")
    dbname = postgres_url.rsplit("/", 1)[1]
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    assert not a.is_alive("node-long-dead")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        try:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [dbname],
            )
            wait_until(
                lambda: any("could not renew" in r.getMessage() for r in caplog.records),
                what="the failed renewal logged",
            )
            assert a.is_alive("node-long-dead")  # cannot renew: judges nobody
        finally:
            conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    wait_until(
        lambda: any("renewed again" in r.getMessage() for r in caplog.records),
        what="the lease renewed again",
    )
    assert a.is_alive("node-long-dead")  # the others get one lease to renew too
    wait_until(lambda: not a.is_alive("node-long-dead"), what="judging again after the grace")
    assert sum("could not renew" in r.getMessage() for r in caplog.records) == 1


def test_expiry_is_the_database_clock_s(leases, postgres_url):
    leases("node-a", lease=30)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        left = conn.execute(
            "SELECT EXTRACT(EPOCH FROM expires_at - now()) FROM node_leases WHERE node_id = %s",
            ["node-a"],
        ).fetchone()[0]
    assert 0 < left <= 30
