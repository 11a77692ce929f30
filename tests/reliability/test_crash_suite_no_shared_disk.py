"""The crash suite (test_crash_suite.py) with nothing on the node's disk: the event log and the
Silver store in PostgreSQL (two databases on one server), export files in a SeaweedFS bucket.

The rounds, kills and checks are the crash suite's own (its `Crasher`); what changes is where
they look. A kill in the `export` moment lands mid-upload (it waits until the bucket shows a
multipart upload in progress), one in the `rename` moment around uploads being completed. The
checks list the bucket instead of a directory: after settling no multipart upload is left
(dead attempts' parts are aborted by the sweep), and at the end the bucket holds exactly the
completed jobs' objects, each of its job's size. Every completed job's download must equal the
same export from a SQLite store of the same rows, byte for byte; `silverexport verify` runs
against the PostgreSQL log after every kill.

Size: SILVEREXPORT_CRASH_ROUNDS (default 8 here), SILVEREXPORT_CRASH_SEED; SILVEREXPORT_SOAK=1
runs 40 rounds on the soak-size store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from silverexport.silver.postgres_store import PostgresSilverStore
from tests.actors.conftest import transfer_rows
from tests.deploy.backends import Backends, made_backends

from .crash_checks import (
    SEED,
    SMALL_ROWS,
    completed_file_name,
    fill_store,
    mode_env,
    seeded_modes,
)
from .reliability_figures import record
from .serve_process import Client, ServeProcess, child_env, soak
from .test_crash_suite import BIG_ROWS, Crasher

ROUNDS = 40 if soak() else int(os.environ.get("SILVEREXPORT_CRASH_ROUNDS", "8"))
LEASE = 1.0  # the restarted node waits out its killed self's lease each round
SWEEP = 0.3  # seconds between sweeps of dead attempts' uploads
UPLOAD_WAIT = 30.0  # at most this long for a large export's first part to reach the bucket


class NoSharedDiskCrasher(Crasher):
    def __init__(self, tmp: Path, backends: Backends):
        super().__init__(tmp)
        self.backends = backends
        self.uploads_at_kill = 0  # multipart uploads in progress the kills left behind

    def fill_store(self) -> None:
        """The rows into the PostgreSQL store the node reads, and into a SQLite store outside
        the node's data dir that gives the reference bytes."""
        assert self.refs is not None
        self.refs.store_path = self.tmp / "reference-silver.db"
        fill_store(self.refs.store_path, BIG_ROWS)
        with PostgresSilverStore(self.backends.silver_url) as store:
            for start in range(0, BIG_ROWS, 10_000):  # the same rows, in the same order
                rows = transfer_rows(min(10_000, BIG_ROWS - start), target="big", start=start)
                store.ingest("token_transfers", rows)
            store.ingest(
                "token_transfers", transfer_rows(SMALL_ROWS, target="small", start=BIG_ROWS)
            )

    def settings(self) -> dict[str, str]:
        return {
            "SILVEREXPORT_EVENT_LOG_URL": self.backends.event_log_url,
            "SILVEREXPORT_SILVER_URL": self.backends.silver_url,
            "SILVEREXPORT_STORAGE_URL": self.backends.storage_url,
            "SILVEREXPORT_NODE_ID": "crash-node",
            "SILVEREXPORT_LEASE_SECONDS": str(LEASE),
            **self.backends.storage_env(),
        }

    def start(self, mode: str | None, n: int) -> str:
        settings = {"SILVEREXPORT_EXPIRY_INTERVAL_SECONDS": str(SWEEP), **mode_env(mode)}
        env = child_env(**settings, **self.settings())
        self.server = ServeProcess(self.data, self.tmp / f"serve{n:03d}.log", env=env)
        return self.server.wait_for_url()

    def wait_for_status(self, base: str, ids: list[str], wanted: str | None) -> None:
        """In the `export` moment, wait on from "running" until the bucket shows an upload
        in progress, so that the kill's random moment falls mid-upload (unless the jobs end
        first)."""
        super().wait_for_status(base, ids, wanted)
        if wanted == "running":
            deadline = time.monotonic() + UPLOAD_WAIT
            while not self.backends.uploads() and time.monotonic() < deadline:
                time.sleep(0.01)  # polling the bucket for the first part, deadline-bounded

    def round(self, n: int, mode: str) -> None:
        super().round(n, mode)
        self.uploads_at_kill += len(self.backends.uploads())

    def check_parts(self) -> None:
        """Every job is over: the sweep aborts every upload left, within a few sweeps."""
        deadline = time.monotonic() + 10 * SWEEP + 5
        while (left := self.backends.uploads()) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the bucket for the sweep, bounded by the deadline
        if left:
            self.figures.stray_files += len(left)
            self.figures.problem(f"multipart uploads left after settling: {left}")

    def check_files(self, job_ids: set[str], base: str) -> None:
        """The bucket holds exactly the completed jobs' objects, each of its job's size (no
        partial object under a final key), and the node's own disk holds no export file."""
        client = Client(base)
        wanted: dict[str, int] = {}
        try:
            for job_id in job_ids:
                job = client.json("GET", f"/v1/export/jobs/{job_id}")[1]
                if job["status"] == "completed":
                    wanted[completed_file_name(client, job_id)] = job["bytes"]
        finally:
            client.close()
        present = self.backends.sizes()
        if present != wanted:
            stray = sorted(set(present) - set(wanted))
            missing = sorted(set(wanted) - set(present))
            wrong = sorted(k for k in set(present) & set(wanted) if present[k] != wanted[k])
            self.figures.stray_files += len(stray) + len(wrong)
            self.figures.lost += len(missing)
            self.figures.problem(f"objects: stray {stray[:5]}, missing {missing}, size {wrong}")
        on_disk = [p for p in self.data.rglob("*") if p.is_file() and "exports" in p.parts]
        if on_disk:
            self.figures.problem(f"export files on the node's disk: {on_disk[:5]}")

    def verify(self, when: str, data_dir: Path, env: dict[str, str] | None = None) -> None:
        super().verify(when, data_dir, env or child_env(**self.settings()))


@pytest.fixture
def no_shared_disk(postgres_server, postgres_url, s3_server, s3_bucket):
    with made_backends(postgres_server, postgres_url, s3_server, s3_bucket) as made:
        yield made


@pytest.mark.timeout(3600 if soak() else 900)
def test_sigkill_with_log_and_silver_in_postgresql_and_files_in_s3(
    no_shared_disk, tmp_path, request
):
    crasher = NoSharedDiskCrasher(tmp_path, no_shared_disk)
    crasher.fill_store()
    started = time.monotonic()
    try:
        for n, mode in enumerate(seeded_modes(crasher.rng, ROUNDS)):
            crasher.round(n, mode)
            crasher.server = None
        crasher.final()
    finally:
        if crasher.server is not None:
            crasher.server.close()
    f = crasher.figures
    figures = f.summary(
        SEED, time.monotonic() - started, uploads_left_by_kills=crasher.uploads_at_kill
    )
    record(request, "crash suite (PostgreSQL log and Silver, S3 files)", figures, tmp_path)
    f.assert_clean(ROUNDS)
