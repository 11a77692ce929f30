"""A process that ends without closing its system exits, clean, and loses nothing.

Real subprocesses (tests/actors/exit_worker.py) on SQLite and on PostgreSQL logs (whose
liveness lease and LISTEN connection have threads of their own). Each must exit before a
deadline with no traceback but its own; the system is closed as it exits (its owner
released, a running export interrupted, its partial file removed), and a fresh open
completes the interrupted job.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from silverexport import ExportSystem, JobStatus
from silverexport.config import Settings
from silverexport.nodes import open_liveness

from .conftest import WAIT, transfer_rows, wait_until

pytestmark = pytest.mark.file_storage  # the partial file is looked for in the export directory

WORKER = Path(__file__).with_name("exit_worker.py")
NODE = "careless-embedder"


@pytest.fixture(
    params=[pytest.param("sqlite", marks=pytest.mark.sqlite_log), "postgres"],
)
def data_dir(request, tmp_path, monkeypatch) -> Path:
    """A data dir with Silver rows, its log on SQLite or PostgreSQL (children inherit it)."""
    if request.param == "postgres":
        monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", request.getfixturevalue("postgres_url"))
    return seeded(tmp_path / "data")


def seeded(data_dir: Path) -> Path:
    with ExportSystem.open(data_dir) as system:
        system.store.ingest("token_transfers", transfer_rows(200))
    return data_dir


def start(data_dir: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(data_dir), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SILVEREXPORT_NODE_ID": NODE},
    )


def finish(proc: subprocess.Popen, stdin: str = "") -> tuple[int, str, str]:
    """The worker's exit code and output; it must exit within the deadline, never be killed."""
    try:
        out, err = proc.communicate(stdin, timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the process did not exit within {WAIT} s without close()")
    return proc.returncode, out, err


def assert_owner_released(data_dir: Path) -> None:
    """Released by a close, not just dropped by a dead process: the lock file is removed
    (a flock) or the lease row deleted, which a probe sees at once, before any lease runs
    out (a lease is 15 s by default)."""
    settings = Settings.from_env(data_dir=data_dir)
    assert not list(settings.owners_dir.glob("*.lock")), "the owner lock was never released"
    probe = open_liveness(settings, serving=False)
    try:
        assert not probe.is_alive(NODE)
    finally:
        probe.release()


def test_an_exit_mid_export_interrupts_the_job_and_the_next_open_completes_it(data_dir):
    proc = start(data_dir, "midway")
    try:
        line = proc.stdout.readline().split()
        assert line[:1] == ["MIDWAY"], line
        job_id = line[1]
        exports = data_dir / "exports"
        wait_until(lambda: list(exports.glob(f"{job_id}*.part")), what="the partial file")
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    code, out, err = finish(proc, "end\n")  # the main thread ends, the export still running
    assert (code, out, err) == (0, "END\n", "")
    assert not list(exports.glob("*.part")), "the interrupted export left its partial file"
    assert_owner_released(data_dir)

    with ExportSystem.open(data_dir, catch_up_interval_seconds=0.05) as system:
        done = system.wait(job_id, timeout=WAIT)
        assert done.status is JobStatus.COMPLETED and done.attempts == 2
        assert done.rows == 200
        body = b"".join(system.file_chunks(done))
        assert hashlib.sha256(body).hexdigest() == done.sha256


def test_a_script_that_ends_without_close_exits_at_once_and_clean(data_dir):
    code, out, err = finish(start(data_dir, "idle"))
    assert (code, out, err) == (0, "END\n", "")
    assert_owner_released(data_dir)


@pytest.mark.parametrize("mode", ["raise", "raise_in_with"])
def test_an_exception_escaping_with_the_system_open_exits_with_its_own_traceback(data_dir, mode):
    code, _, err = finish(start(data_dir, mode))
    assert code == 1
    assert err.count("Traceback") == 1 and err.rstrip().endswith("ValueError: boom"), err
    assert_owner_released(data_dir)


@pytest.mark.sqlite_log  # a forked child shares its parent's PostgreSQL sockets: not tried
def test_a_forked_child_ends_at_once_and_leaves_its_parents_system_alone(tmp_path):
    data_dir = seeded(tmp_path / "data")
    code, out, err = finish(start(data_dir, "fork"))
    assert (code, out, err) == (0, "CHILD 0\nEND\n", "")
    assert_owner_released(data_dir)
