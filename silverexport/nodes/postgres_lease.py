"""Liveness by lease: each node holds a row in `node_leases` of the event log's database and
renews it on a thread of its own; a node whose lease expired is dead.

For nodes that share nothing but the database (SPEC §8). What it takes from the job queues
that do this on PostgreSQL (procrastinate's worker heartbeats, Oban's and River's leader
rows): the expiry is an absolute time computed by the database's own clock (`now()`), both when
written and when compared, so the nodes' clocks never enter into it; a lease is taken in one
statement (INSERT ... ON CONFLICT ... WHERE the old one expired), so two nodes can never both
hold one id; a clean stop deletes its row, so the others see it gone at once rather than a
lease later. It adds a token per holder, so a node can tell its own lease from a later holder's
of the same id.

A lease decides who *may* recover a job, never who finishes one: a node that could not renew in
time and comes back (a long pause, a network cut) still appends at the version it knew, and
the log refuses it (ConcurrencyError) once another node recorded the job's next attempt.

Renewal failures are not fatal: they are logged, retried every beat, and the lease is taken
again when the database answers. While a node cannot renew, and for one lease after it can
again, it judges nobody dead: the others were likely cut off too, and must get the time to
renew before their jobs are taken from them.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time

import psycopg

from ..errors import StorageError
from ..events.postgres_conn import connect, one_line
from ..events.postgres_schema import SCHEMA_LOCK_KEY
from .port import NodeIdInUse

log = logging.getLogger("silverexport.nodes")
APPLICATION_NAME = "silverexport-lease"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS node_leases (
    node_id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)
"""
# Taken when free, expired, or already ours (a retake after a lost renewal); never otherwise.
_TAKE = """
INSERT INTO node_leases AS held (node_id, token, started_at, renewed_at, expires_at)
VALUES (%(node)s, %(token)s, now(), now(), now() + make_interval(secs => %(lease)s))
ON CONFLICT (node_id) DO UPDATE
SET token = EXCLUDED.token, started_at = EXCLUDED.started_at, renewed_at = now(),
    expires_at = EXCLUDED.expires_at
WHERE held.expires_at <= now() OR held.token = EXCLUDED.token
RETURNING 1
"""
_RENEW = """
UPDATE node_leases SET renewed_at = now(), expires_at = now() + make_interval(secs => %(lease)s)
WHERE node_id = %(node)s AND token = %(token)s AND expires_at > now()
"""
_HELD = (
    "SELECT expires_at, EXTRACT(EPOCH FROM expires_at - now()) FROM node_leases WHERE node_id = %s"
)
_ALIVE = "SELECT expires_at > now() FROM node_leases WHERE node_id = %s"
_RELEASE = "DELETE FROM node_leases WHERE node_id = %(node)s AND token = %(token)s"
# Rows of nodes that died without a clean stop: no row is read the same as an expired one.
_FORGET = "DELETE FROM node_leases WHERE expires_at < now() - interval '1 day'"


class PostgresLease:
    """This node's lease in the event log's database, renewed every lease/3 while it lives."""

    def __init__(self, url: str, node_id: str, *, lease_seconds: float):
        self.url = url
        self._owner_id = node_id
        self.lease_seconds = float(lease_seconds)
        self.interval = self.lease_seconds / 3
        self.token = secrets.token_hex(8)
        self._params = {"node": node_id, "token": self.token, "lease": self.lease_seconds}
        self._stop = threading.Event()
        self._released = False
        self._ask_lock = threading.Lock()
        # Judge others only from this monotonic time on; None while renewals fail.
        self._judge_from: float | None = time.monotonic()
        self._failing_since: float | None = None
        self._beat_conn = self._connect()
        self._ask_conn: psycopg.Connection | None = None
        try:
            self._create()
            self._take_at_start()
            self._ask_conn = self._connect()
        except BaseException:
            self._close_conns()
            raise
        self._thread = threading.Thread(
            target=self._beat_loop, name=f"silverexport-lease-{node_id}", daemon=True
        )
        self._thread.start()

    @property
    def owner_id(self) -> str:
        return self._owner_id

    def _connect(self) -> psycopg.Connection:
        conn = connect(self.url)
        # A beat must not hang past the lease it renews; lease rows are soft state, so a
        # beat does not wait for the WAL flush (a crash loses at most the last renewal).
        conn.execute(f"SET statement_timeout = {max(1000, int(self.lease_seconds * 500))}")
        conn.execute("SET synchronous_commit = off")
        conn.execute(f"SET application_name = '{APPLICATION_NAME}'")  # for operators
        return conn

    def _create(self) -> None:
        try:
            with self._beat_conn.transaction():
                self._beat_conn.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})")
                self._beat_conn.execute(_SCHEMA)
                self._beat_conn.execute(_FORGET)
        except psycopg.Error as e:
            raise StorageError(f"could not create the node leases table: {one_line(e)}") from e

    def _take(self, conn: psycopg.Connection) -> bool:
        return conn.execute(_TAKE, self._params).fetchone() is not None

    def _take_at_start(self) -> None:
        """Take the lease, or refuse to start if a live node holds this id. A holder that
        does not renew within one lease was a dead one (a node restarted at once after a
        SIGKILL keeps its id): its lease is taken when it runs out."""
        deadline = time.monotonic() + self.lease_seconds + 1
        first_seen = None
        try:
            while not self._take(self._beat_conn):
                row = self._beat_conn.execute(_HELD, [self._owner_id]).fetchone()
                if row is None:
                    continue  # released between the two statements: take it now
                expires_at, left = row
                first_seen = first_seen or expires_at
                if expires_at > first_seen or time.monotonic() > deadline:
                    raise NodeIdInUse(
                        f"SILVEREXPORT_NODE_ID: node {self._owner_id!r} is already running "
                        "(another live process renews its lease in the event log's database)"
                    )
                time.sleep(min(max(float(left), 0.05), self.interval))  # until it runs out
        except psycopg.Error as e:
            raise StorageError(
                f"SILVEREXPORT_EVENT_LOG_URL: could not take the node lease: {one_line(e)}"
            ) from e

    # -- the heartbeat ---------------------------------------------------------------------

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> bool:
        """Renew (or, if it was lost, take again) the lease; True if it is held now. Never
        raises: a failure is logged and the next beat tries again."""
        try:
            if self._beat_conn.closed or self._beat_conn.broken:
                self._beat_conn.close()
                self._beat_conn = self._connect()
            renewed = self._beat_conn.execute(_RENEW, self._params).rowcount == 1
            held = renewed or self._take(self._beat_conn)
        except (psycopg.Error, StorageError) as e:
            self._failed(f"could not renew the node lease of {self._owner_id!r}: {one_line(e)}")
            return False
        if not held:
            self._failed(
                f"node id {self._owner_id!r} was taken by another process after this one's "
                "lease ran out; its jobs are being recovered elsewhere"
            )
            return False
        if not renewed:
            # Others may have recovered this node's jobs meanwhile: the log fences them.
            log.warning("node %s: lease ran out before it was renewed; taken again", self._owner_id)
        if self._failing_since is not None:
            log.warning(
                "node %s: lease renewed again after %.1f s of failures",
                self._owner_id,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None
            self._judge_from = time.monotonic() + self.lease_seconds
        return True

    def _failed(self, message: str) -> None:
        self._judge_from = None
        if self._failing_since is None:  # one line per outage, not one per beat
            self._failing_since = time.monotonic()
            log.error("%s; retrying every %.1f s", message, self.interval)

    # -- asking ----------------------------------------------------------------------------

    def is_alive(self, owner_id: str | None) -> bool:
        if owner_id is None:
            return False
        if owner_id == self._owner_id:
            return not self._released
        judge_from = self._judge_from
        if judge_from is None or time.monotonic() < judge_from:
            return True  # cannot tell yet (see the module's docstring)
        with self._ask_lock:
            try:
                conn = self._ask_conn
                if conn is None or conn.closed or conn.broken:
                    if conn is not None:
                        conn.close()
                    conn = self._ask_conn = self._connect()
                row = conn.execute(_ALIVE, [owner_id]).fetchone()
            except (psycopg.Error, StorageError) as e:
                log.warning("could not read the lease of node %s: %s", owner_id, one_line(e))
                return True
        return bool(row and row[0])

    def release(self) -> None:
        """Stop renewing and delete the lease: the others see this node gone at once."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=self.lease_seconds + 15)
        with contextlib.suppress(psycopg.Error, StorageError):
            if self._beat_conn.closed or self._beat_conn.broken:
                self._beat_conn = self._connect()
            self._beat_conn.execute(_RELEASE, self._params)
        self._close_conns()

    def _close_conns(self) -> None:
        for conn in (self._beat_conn, self._ask_conn):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
