"""SIGKILL in the middle of an ingest into the PostgreSQL Silver store: the batch is all or
nothing. A real `silverexport ingest` process reads rows from a pipe; once PostgreSQL shows
its transaction holding written rows (a transaction id, idle while it waits for more input),
the process is killed. The server rolls the transaction back: none of the batch is there, the
rows before it are, and the same file ingested again takes the ids it would have taken.

(SIGKILL mid-upload and mid-export, with another node finishing the job, is in
test_deployment.py; the crash suite runs in this configuration in
tests/reliability/test_crash_suite_no_shared_disk.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys

import orjson
import psycopg

from silverexport.silver.postgres_store import PostgresSilverStore
from tests.actors.conftest import transfer_rows
from tests.reliability.multinode import wait_for
from tests.reliability.serve_process import ROOT, child_env

BEFORE = 1000
BATCH = 25_000  # two COPY chunks of 10,000 sent, the third waiting for its rows


def lines(rows) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def ingest_argv(tmp_path) -> list[str]:
    """`silverexport ingest token_transfers -`: rows from stdin."""
    data = str(tmp_path / "node")
    return [
        sys.executable,
        "-m",
        "silverexport",
        "ingest",
        "token_transfers",
        "-",
        "--data-dir",
        data,
    ]


def writing_backends(url: str) -> list[int]:
    """Backends of the Silver database inside a transaction that has written (has an xid)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
            " AND state = 'idle in transaction'"
        ).fetchall()
    return [pid for (pid,) in rows]


def backend_alive(url: str, pid: int) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return found is not None


def ids(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*), min(id), max(id) FROM token_transfers").fetchone()


def test_an_ingest_killed_mid_batch_leaves_none_of_the_batch(postgres_url, tmp_path):
    url = postgres_url  # the Silver store's database
    with PostgresSilverStore(url) as store:
        assert store.ingest("token_transfers", transfer_rows(BEFORE)) == BEFORE
    env = child_env(SILVEREXPORT_SILVER_URL=url)
    ingest = subprocess.Popen(
        ingest_argv(tmp_path),
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    batch = lines(transfer_rows(BATCH, start=BEFORE))
    try:
        assert ingest.stdin is not None
        ingest.stdin.write(batch)
        ingest.stdin.flush()  # and kept open: the command waits for the rest of its input
        (pid,) = wait_for(lambda: writing_backends(url), what="the ingest's rows written")
        ingest.send_signal(signal.SIGKILL)
        assert ingest.wait(timeout=30) == -signal.SIGKILL
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait(timeout=30)
        for stream in (ingest.stdin, ingest.stdout, ingest.stderr):
            if stream is not None:
                stream.close()
    # The server sees the connection close and rolls the transaction back.
    wait_for(lambda: not backend_alive(url, pid), what="the dead client's backend gone")
    assert ids(url) == (BEFORE, 1, BEFORE)

    again = subprocess.run(
        ingest_argv(tmp_path),
        cwd=ROOT,
        env=env,
        input=batch,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode().strip() == f"ingested {BATCH} rows into token_transfers"
    assert ids(url) == (BEFORE + BATCH, 1, BEFORE + BATCH)  # the ids it would have taken
