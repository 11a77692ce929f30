"""Storage faults, on real filesystems and real SQLite files: every fault fails its job with a
clear message, leaves no partial file, keeps the system serving, and a later job succeeds once
the fault is gone.

Faults are real where the machine allows (permissions, an immutable directory, a small or
read-only tmpfs, a missing or locked database); where mounting needs root the variant skips,
and ENOSPC is also raised from inside the real writer so that case always runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from contextlib import closing
from pathlib import Path

import pytest

from silverexport import ExportRequest, JobStatus
from silverexport import sqlite as sq
from silverexport.actors.messages import Tick
from silverexport.errors import StorageError
from silverexport.system import ExportSystem
from tests.actors.conftest import WAIT, GatedWriter, transfer_rows, wait_until

from .as_user import copy_importable, imported_files, interpreter_for
from .storage_fault_tools import (
    IS_ROOT,
    FullDisk,
    assert_completes,
    assert_failed_cleanly,
    assert_serving,
    job_files,
    remount,
    tmpfs,
    unwritable,
)

# Faults of a real directory and filesystem: the store here is the export directory.
pytestmark = pytest.mark.file_storage

TRANSFERS = ExportRequest(dataset="token_transfers", format="csv")


def failed_job(system: ExportSystem, request: ExportRequest = TRANSFERS):
    view = system.wait(system.submit(request).job_id, timeout=WAIT)
    assert view.status is JobStatus.FAILED, view
    return view


# -- the export directory ----------------------------------------------------------------------


def test_unwritable_export_directory_fails_the_job_then_recovers(open_system):
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(20))
    exports = system.settings.exports_dir
    with unwritable(exports) as cause:
        view = failed_job(system)
        assert_failed_cleanly(system, view, cause)
        assert_serving(system, view.job_id)
    assert_completes(system, rows=20)


def test_export_directory_on_a_read_only_filesystem(open_system, tmp_path):
    exports = tmp_path / "data" / "exports"
    exports.mkdir(parents=True)
    with tmpfs(exports, size="1m", readonly=True), closing(open_system()) as system:
        system.store.ingest("token_transfers", transfer_rows(20))
        view = failed_job(system)
        assert_failed_cleanly(system, view, "Read-only file system")
        assert_serving(system, view.job_id)
        remount(exports, "rw")
        assert_completes(system, rows=20)


def test_export_directory_turning_unwritable_mid_export(open_system):
    """The part file exists when the directory stops taking changes: the rename fails, and so
    does removing the part. The job still fails cleanly at once, its slot is freed, and the
    part is swept away as soon as the directory can be written again."""
    writer = GatedWriter()
    system = open_system(export_fn=writer, max_concurrent_exports=1, expiry_interval_seconds=0.05)
    system.store.ingest("token_transfers", transfer_rows(20))
    job = system.submit(TRANSFERS)
    assert writer.started.wait(WAIT)
    exports = system.settings.exports_dir
    assert job_files(system, job.job_id) == [f"{job.job_id}.a1.csv.attempt1.part"]
    with unwritable(exports) as cause:
        writer.gate.set()
        view = system.wait(job.job_id, timeout=WAIT)
        assert view.status is JobStatus.FAILED and cause in view.error, view
        assert "\n" not in view.error
        assert system.slots.usage().exports == 0 or system.status(job.job_id).status.terminal
        assert_serving(system, job.job_id)
    wait_until(lambda: job_files(system, job.job_id) == [], what="the stale part to be swept")
    assert_completes(system, rows=20)


# -- a full disk -------------------------------------------------------------------------------


def test_disk_full_on_a_small_tmpfs(open_system, tmp_path):
    exports = tmp_path / "data" / "exports"
    exports.mkdir(parents=True)
    with tmpfs(exports, size="64k"), closing(open_system()) as system:
        system.store.ingest("token_transfers", transfer_rows(1000))  # ~300 kB of CSV
        view = failed_job(system)
        assert_failed_cleanly(system, view, "No space left on device")
        assert_serving(system, view.job_id)
        remount(exports, "size=16m")
        assert_completes(system, rows=1000)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_enospc_part_way_through_the_file(open_system, compression):
    disk = FullDisk()
    system = open_system(export_fn=disk)
    system.store.ingest("token_transfers", transfer_rows(200))
    request = ExportRequest(dataset="token_transfers", format="jsonl", compression=compression)
    view = failed_job(system, request)
    assert disk.part_size_at_failure is not None, "the failure must come mid-file"
    assert_failed_cleanly(system, view, "No space left on device")
    assert_serving(system, view.job_id)
    disk.full = False
    assert_completes(system, rows=200, format="jsonl", compression=compression)


# -- the Silver store --------------------------------------------------------------------------


def test_silver_store_missing(open_system):
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(20))
    silver = system.settings.silver_path
    moved = silver.with_name("silver.db.away")
    silver.rename(moved)
    try:
        view = failed_job(system)
        assert_failed_cleanly(system, view, "does not exist")
        assert_serving(system, view.job_id)
    finally:
        moved.rename(silver)
    assert_completes(system, rows=20)


def test_silver_store_that_is_not_a_database(open_system):
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(20))
    silver = system.settings.silver_path
    # Everything into the main file first: with pages still in the WAL, SQLite would read
    # them from there and never look at the replaced file's header.
    system.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    moved = silver.with_name("silver.db.away")
    silver.rename(moved)
    silver.write_bytes(b"this is not an SQLite database, only some bytes\n" * 100)
    try:
        view = failed_job(system)
        assert_failed_cleanly(system, view, "not a database")
        assert_serving(system, view.job_id)
    finally:
        moved.replace(silver)
    assert_completes(system, rows=20)


def test_long_ingestion_transaction_does_not_block_exports(open_system):
    """Ingestion holds the store's write lock (and an ingestion slot) for as long as it likes;
    exports read a snapshot in WAL mode, so they finish with the rows committed before."""
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(20))
    inside, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def slow_rows():
        yield from transfer_rows(30, start=20)
        inside.set()
        assert release.wait(WAIT)
        yield from transfer_rows(10, start=50)

    def ingest() -> None:
        try:
            outcome.append(system.ingest("token_transfers", slow_rows(), timeout=WAIT))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        assert inside.wait(WAIT)
        assert system.slots.usage().ingestion == 1
        during = assert_completes(system, rows=20)
        assert_serving(system, during.job_id)
    finally:
        release.set()
        thread.join(WAIT)
    assert outcome == [40]
    assert_completes(system, rows=60)


def test_silver_store_write_locked_by_another_connection(open_system):
    """An outside ingestion holding BEGIN EXCLUSIVE (in WAL mode a write lock) with rows not
    yet committed: exports see the committed snapshot, never the half-done batch."""
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(20))
    other = sq.connect(system.settings.silver_path)
    try:
        other.execute("BEGIN EXCLUSIVE")
        other.execute("DELETE FROM token_transfers WHERE id <= 5")
        during = assert_completes(system, rows=20)
        assert_serving(system, during.job_id)
        other.execute("COMMIT")
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
    assert_completes(system, rows=15)


# -- the event log -----------------------------------------------------------------------------


def lock_events(system: ExportSystem) -> sqlite3.Connection:
    conn = sqlite3.connect(system.settings.events_path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


@pytest.mark.sqlite_log  # locks the SQLite file; PostgreSQL: test_postgres_log.py
def test_event_log_locked_briefly_delays_submit_but_it_succeeds(open_system):
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(20))
    locker = lock_events(system)
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(system.submit(TRANSFERS)))
    try:
        thread.start()
        thread.join(0.3)  # not a wait for anything: while the lock is held it cannot return
        assert thread.is_alive() and not result, "submit returned while the log was locked"
        assert system.list(limit=10)[0] == []  # reads go on in WAL mode
    finally:
        locker.execute("COMMIT")
        locker.close()
    thread.join(WAIT)
    (job,) = result
    assert system.wait(job.job_id, timeout=WAIT).status is JobStatus.COMPLETED


@pytest.mark.sqlite_log  # locks the SQLite file; PostgreSQL: test_postgres_log.py
def test_event_log_locked_past_the_busy_timeout(open_system, monkeypatch):
    """Submit and cancel fail with a StorageError (HTTP 503), record nothing, and the
    system serves on; once the lock is gone everything works again."""
    monkeypatch.setattr(sq, "BUSY_TIMEOUT_MS", 100)
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(20))
    before = system.wait(system.submit(TRANSFERS).job_id, timeout=WAIT)
    events = system.log.count()
    locker = lock_events(system)
    try:
        with pytest.raises(StorageError, match="locked"):
            system.submit(TRANSFERS)
        assert system.status(before.job_id).status is JobStatus.COMPLETED
        assert [v.job_id for v in system.list(limit=10)[0]] == [before.job_id]
    finally:
        locker.execute("COMMIT")
        locker.close()
    assert system.log.count() == events
    assert_completes(system, rows=20)
    assert system.log.first_bad_seq() is None


@pytest.mark.sqlite_log  # locks the SQLite file; PostgreSQL: test_postgres_log.py
def test_outcome_whose_append_fails_is_kept_and_recorded_later(open_system, monkeypatch, caplog):
    """JobCompleted cannot be appended while another connection holds the log's write lock
    past the busy timeout, and its retries on Tick fail too: the outcome is kept, the job is
    not taken for an orphan, and it completes on its first attempt once the lock is gone."""
    monkeypatch.setattr(sq, "BUSY_TIMEOUT_MS", 100)
    caplog.set_level(logging.WARNING, logger="silverexport.actors.supervisor")
    writer = GatedWriter()
    system = open_system(export_fn=writer, max_concurrent_exports=1, progress_interval_seconds=3600)
    system.store.ingest("token_transfers", transfer_rows(3))
    job = system.submit(TRANSFERS)
    assert writer.started.wait(WAIT)
    locker = lock_events(system)
    try:
        writer.gate.set()
        final = system.settings.exports_dir / f"{job.job_id}.a1.csv"
        wait_until(final.exists, what="the file to be published")

        def pending() -> list:  # a fresh ask each time: a proxy's future keeps its first value
            return system.supervisor.proxy().pending.get()

        wait_until(pending, what="the outcome kept after its append failed")
        for _ in range(3):  # each Tick retries it, waits out the busy timeout, and keeps it
            handled = threading.Event()
            system.supervisor.tell(Tick(handled))
            assert handled.wait(WAIT)
            assert len(pending()) == 1
        # Every Tick now waits out the busy timeout; the timer must not queue more of them.
        assert system.supervisor.actor_inbox.qsize() <= 2
        assert system.status(job.job_id).status is JobStatus.RUNNING
        # One line for the whole time the log refused, not one (nor a traceback) per retry.
        said = [r.getMessage() for r in caplog.records if r.name.endswith("supervisor")]
        assert sum("out of reach" in line for line in said) == 1, said
        assert not any(r.exc_info for r in caplog.records), said
    finally:
        locker.execute("COMMIT")
        locker.close()
    done = system.wait(job.job_id, timeout=WAIT)
    assert done.status is JobStatus.COMPLETED and done.attempts == 1, done
    assert [e.type for e in system.events(job.job_id)] == [
        "JobRequested",
        "JobStarted",
        "JobCompleted",
    ]
    assert job_files(system, job.job_id) == [f"{job.job_id}.a1.csv"]
    assert_completes(system, rows=3)


# -- permissions, as an ordinary user ------------------------------------------------------------

AS_USER = """
import json, sys
from silverexport import ExportRequest, ExportSystem

data, rows = sys.argv[1], json.loads(open(sys.argv[2]).read())
with ExportSystem.open(data, catch_up_interval_seconds=0.05) as system:
    system.store.ingest("token_transfers", rows)
    request = ExportRequest(dataset="token_transfers", format="csv")
    system.settings.exports_dir.chmod(0o500)
    failed = system.wait(system.submit(request).job_id, timeout=30)
    left = sorted(p.name for p in system.settings.exports_dir.iterdir())
    listed = len(system.list(limit=10)[0])
    system.settings.exports_dir.chmod(0o755)
    done = system.wait(system.submit(request).job_id, timeout=30)
    print(failed.status.value, done.status.value, done.rows, listed, left, failed.error, sep="|")
"""
NOBODY = 65534


@pytest.mark.skipif(not IS_ROOT, reason="as an ordinary user the permissions test runs as is")
def test_unwritable_export_directory_by_permissions_as_an_ordinary_user(tmp_path):
    """Root ignores directory permissions, so the plain chmod case runs as `nobody`, on a
    copy of what it imports in a directory nobody can enter (the checkout may be 0700)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and no setpriv (util-linux) to run this case as nobody")
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(transfer_rows(20)))
    files = imported_files(
        AS_USER, str(tmp_path / "rehearsal"), str(rows), cwd=tmp_path, timeout=WAIT * 2
    )
    home = Path(tempfile.mkdtemp(prefix="silverexport-nobody-"))
    try:
        home.chmod(0o755)
        copied = copy_importable(files, home / "lib")
        assert "silverexport" in copied, copied
        shutil.copy(rows, home / "rows.json")
        (home / "data").mkdir()
        for path in (home, home / "data"):
            os.chown(path, NOBODY, NOBODY)
        drop = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        python, tried = interpreter_for(drop, cwd=home)
        if python is None:
            pytest.skip(
                f"no Python {sys.version_info.major}.{sys.version_info.minor} that nobody can "
                f"run (tried {', '.join(tried)}): install python3.11 outside a private home"
            )
        done = subprocess.run(
            [*drop, python, "-s", "-c", AS_USER, str(home / "data"), str(home / "rows.json")],
            cwd=home,
            env={"PATH": os.defpath, "HOME": str(home), "PYTHONPATH": str(home / "lib")},
            capture_output=True,
            text=True,
            timeout=WAIT * 2,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        *outcome, error = done.stdout.strip().split("|", 5)
        assert outcome == ["failed", "completed", "20", "1", "[]"], done.stdout
        assert error.startswith("export failed: ") and "Permission denied" in error
    finally:
        shutil.rmtree(home, ignore_errors=True)
