"""Crash recovery with real processes killed by SIGKILL, and retention."""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from silverexport import ExportRequest, ExportSystem, JobStatus
from silverexport.config import Settings
from silverexport.events.backends import open_event_log, open_views
from silverexport.events.types import JobCompleted, JobRequested, JobStarted
from silverexport.model import ExportFormat
from silverexport.nodes import open_liveness
from silverexport.silver.writers import Filters, export_to_file
from silverexport.timeutil import parse_canonical

from .conftest import WAIT, transfer_rows, wait_until

# Kills land mid-export by the export directory's `.part` files, and checks read it.
pytestmark = pytest.mark.file_storage

WORKER = Path(__file__).with_name("crash_worker.py")
_STARTED: list[Worker] = []


@pytest.fixture(autouse=True)
def _short_leases(monkeypatch):
    """On a PostgreSQL log a killed worker is dead once its lease runs out: make that soon."""
    monkeypatch.setenv("SILVEREXPORT_LEASE_SECONDS", "1")


def wait_dead(data_dir: Path, node_id: str) -> None:
    """Until the other processes can see that the killed worker `node_id` is dead (at once
    with lock files; once its lease ran out with a lease in PostgreSQL)."""
    probe = open_liveness(Settings.from_env(data_dir=data_dir), serving=False)
    try:
        wait_until(lambda: not probe.is_alive(node_id), what=f"{node_id} seen dead")
    finally:
        probe.release()


@pytest.fixture(autouse=True)
def _kill_leftover_workers():
    """A failed assertion must not leave a stalled worker process running."""
    yield
    while _STARTED:
        worker = _STARTED.pop()
        if worker.proc.poll() is None:
            worker.kill()


class Worker:
    """A crash_worker subprocess whose stdout lines are read with deadlines."""

    def __init__(self, data_dir: Path, mode: str, *extra: str, node_id: str | None = None):
        env = {**os.environ, "SILVEREXPORT_NODE_ID": node_id} if node_id else None
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(data_dir), mode, *extra],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        _STARTED.append(self)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def read_until(self, *prefixes: str) -> list[str]:
        """Lines read until one starting with each prefix has been seen (in any order)."""
        seen: list[str] = []
        missing = set(prefixes)
        while missing:
            line = self.lines.get(timeout=WAIT)
            seen.append(line)
            missing = {p for p in missing if not line.startswith(p)}
        return seen

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=WAIT)
        self.proc.stdout.close()


def seed(data_dir: Path, rows: int = 200) -> None:
    with ExportSystem.open(data_dir) as system:
        system.store.ingest("token_transfers", transfer_rows(rows))


@pytest.mark.sqlite_silver  # its worker reads the Silver file of the data dir
def test_sigkill_mid_export_loses_nothing_and_serves_only_whole_files(tmp_path):
    data_dir = tmp_path / "data"
    seed(data_dir)
    worker = Worker(data_dir, "submit")
    accepted = [
        line.split()[1]
        for line in worker.read_until("MIDWAY", "READY")
        if line.startswith("ACCEPTED")
    ]
    assert len(accepted) == 3
    assert list((data_dir / "exports").glob("*.part")), "the kill should land mid-export"
    worker.kill()

    with ExportSystem.open(data_dir, catch_up_interval_seconds=0.05) as system:
        done = [system.wait(job_id, timeout=WAIT) for job_id in accepted]
        assert [v.status for v in done] == [JobStatus.COMPLETED] * 3
        assert done[0].attempts == 2, "the interrupted run counts as an attempt"
        history = [e.type for e in system.events(accepted[0])]
        assert history[:4] == ["JobRequested", "JobStarted", "JobFailed", "JobStarted"]
        for view in done:
            path = system.file_path(view)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == view.sha256
            reference = tmp_path / f"ref-{view.job_id}"
            export_to_file(
                system.settings.silver_path,
                "token_transfers",
                view.format,
                reference,
                filters=Filters(target_id="t1"),
                limit=system.settings.max_records,
            )
            assert path.read_bytes() == reference.read_bytes()
        assert not list(system.settings.exports_dir.glob("*.part"))
        assert system.log.first_bad_seq() is None


def test_a_job_interrupted_three_times_stays_failed(tmp_path):
    data_dir = tmp_path / "data"
    seed(data_dir, rows=50)
    worker = Worker(data_dir, "submit", node_id="worker-0")
    job_id = next(
        line.split()[1]
        for line in worker.read_until("MIDWAY", "READY")
        if line.startswith("ACCEPTED")
    )
    worker.kill()
    for n in (1, 2):
        # The next worker must see its predecessor dead when it starts, or it would start
        # the other jobs (queued by an owner long dead) before the interrupted one.
        wait_dead(data_dir, f"worker-{n - 1}")
        worker = Worker(data_dir, "resume", node_id=f"worker-{n}")
        worker.read_until("MIDWAY")
        worker.kill()
    with ExportSystem.open(data_dir) as system:
        view = system.wait(job_id, timeout=WAIT)
        assert view.status is JobStatus.FAILED and view.attempts == 3
        assert "interrupted" in view.error
        assert not list(system.settings.exports_dir.glob(f"{job_id}*"))


def test_finished_jobs_expire_on_time_by_themselves(open_system):
    # The file sweep is hourly here: expiry itself must not wait for it.
    system = open_system(job_ttl_seconds=0.2, expiry_interval_seconds=3600)
    system.store.ingest("token_transfers", transfer_rows(5))
    job = system.submit(ExportRequest(dataset="token_transfers", format="csv"))
    view = wait_until(
        lambda: (v := system.status(job.job_id)).status is JobStatus.EXPIRED and v,
        what="expiry",
    )
    finished = parse_canonical(view.finished_at)
    assert parse_canonical(view.expires_at) - finished == timedelta(milliseconds=200)
    # JobExpired is appended (and the view published) first, the file removed right after.
    path = system.settings.exports_dir / view.file_name
    wait_until(lambda: not path.exists(), what="the expired job's file removed")
    types = [e.type for e in system.events(job.job_id)]
    assert types[-2:] == ["JobCompleted", "JobExpired"]


def completed_job_on_disk(data_dir: Path, retention_seconds: float) -> tuple[str, Path]:
    """A completed job written straight into the log (no running system to expire it)."""
    job_id = "ab" * 16
    log = open_event_log(Settings.from_env(data_dir=data_dir))  # the backend the test runs on
    try:
        log.projector = open_views(log)
        log.append(
            job_id,
            0,
            JobRequested("t", "hl_fills", "csv", {"target_id": None}, None, None),
            JobStarted(attempt=1, owner="gone"),
            JobCompleted(1, 3, "s", False, f"{job_id}.csv", retention_seconds=retention_seconds),
        )
    finally:
        log.close()
    path = data_dir / "exports" / f"{job_id}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a\r\n")
    return job_id, path


def test_prune_expires_on_demand_and_never_deletes_events(tmp_path, capsys):
    from silverexport.__main__ import main

    data_dir = tmp_path / "prune"
    job_id, path = completed_job_on_disk(data_dir, retention_seconds=0)
    assert main(["jobs", "--data-dir", str(data_dir)]) == 0  # reading changes nothing
    assert path.exists()
    capsys.readouterr()

    assert main(["prune", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr()
    assert out.out.split() == [job_id] and "expired 1 job(s)" in out.err
    assert not path.exists()
    with ExportSystem.open(data_dir, run_jobs=False) as reopened:
        assert reopened.status(job_id).status is JobStatus.EXPIRED
        assert [e.type for e in reopened.events(job_id)][-1] == "JobExpired"
        assert reopened.log.count() == 4
    assert main(["prune", "--data-dir", str(data_dir)]) == 0
    assert "expired 0 job(s)" in capsys.readouterr().err


def test_two_processes_share_one_log(tmp_path):
    data_dir = tmp_path / "data"
    seed(data_dir, rows=20)
    script = (
        "import sys\n"
        "from silverexport import ExportSystem, ExportRequest\n"
        "with ExportSystem.open(sys.argv[1], catch_up_interval_seconds=0.05) as s:\n"
        "    ids = [s.submit(ExportRequest(dataset='token_transfers', format='csv'),"
        " tenant='ingest').job_id for _ in range(15)]\n"
        "    [s.wait(i, timeout=60) for i in ids]\n"
        "    print(' '.join(ids))\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    with ExportSystem.open(data_dir, catch_up_interval_seconds=0.05) as system:
        mine = [
            system.submit(ExportRequest(dataset="token_transfers", format="jsonl")).job_id
            for _ in range(15)
        ]
        out, _ = other.communicate(timeout=WAIT * 2)
        assert other.returncode == 0
        theirs = out.split()
        for job_id in mine + theirs:
            assert system.wait(job_id, timeout=WAIT).status is JobStatus.COMPLETED
        assert system.status(theirs[0]).tenant == "ingest"
    log = open_event_log(Settings.from_env(data_dir=data_dir))
    try:
        assert log.first_bad_seq() is None
        assert log.count() == log.last_seq()
    finally:
        log.close()


def test_export_format_enum_round_trip():
    assert ExportFormat("csv").content_type == "text/csv; charset=utf-8"
