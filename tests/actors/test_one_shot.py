"""A one-shot process runs only its own job (issue 10 item 10, SPEC §6)."""

from __future__ import annotations

import os
import subprocess
import sys

from silverexport import ExportRequest, ExportSystem, JobStatus
from silverexport.events.log import Append
from silverexport.events.types import JobStarted

from .conftest import WAIT, transfer_rows
from .history import request, versions, write_jobs
from .test_recovery import Worker, seed

GHOST = "ghost-host-1-dead"  # an owner whose process holds no lock: it is not alive


_EXPORT = (sys.executable, "-m", "silverexport", "export", "token_transfers", "--format", "csv")


def _cli_export(data_dir, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SILVEREXPORT_")}
    return subprocess.run(
        [*_EXPORT, "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=WAIT * 4,
        env=env,
    )


def test_the_cli_export_leaves_a_killed_server_s_jobs_alone(tmp_path):
    data_dir = tmp_path / "data"
    seed(data_dir)
    worker = Worker(data_dir, "submit")
    accepted = [
        line.split()[1]
        for line in worker.read_until("MIDWAY", "READY")
        if line.startswith("ACCEPTED")
    ]
    worker.kill()  # one job running (mid-export), two queued: all orphans now
    events = data_dir / "events.db"
    before = versions(events, accepted)

    done = _cli_export(data_dir)
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stderr
    assert versions(events, accepted) == before  # not started, not interrupted, no attempt spent

    with ExportSystem.open(data_dir, catch_up_interval_seconds=0.05) as system:
        views = [system.wait(job_id, timeout=WAIT) for job_id in accepted]
    assert [v.status for v in views] == [JobStatus.COMPLETED] * 3
    assert views[0].attempts == 2  # recovered by the serving process, the interruption counted


def test_recover_false_runs_its_own_job_and_no_dead_owner_s(tmp_path):
    data_dir = tmp_path / "data"
    with ExportSystem.open(data_dir) as system:
        system.store.ingest("token_transfers", transfer_rows(20))
    running, queued = "a" * 32, "b" * 32
    write_jobs(
        data_dir / "events.db",
        [
            Append(running, 0, [request("bob", owner=GHOST), JobStarted(attempt=1, owner=GHOST)]),
            Append(queued, 0, [request("bob", owner=GHOST, target="t2")]),
        ],
    )
    with ExportSystem.open(data_dir, recover=False, catch_up_interval_seconds=0.05) as system:
        mine = system.submit(ExportRequest(dataset="token_transfers", format="jsonl"))
        assert system.wait(mine.job_id, timeout=WAIT).status is JobStatus.COMPLETED
        system.catch_up()
        assert system.status(running).status is JobStatus.RUNNING
        assert system.status(running).attempts == 1
        assert system.status(queued).status is JobStatus.QUEUED
    assert versions(data_dir / "events.db", [running, queued]) == {running: 2, queued: 1}

    with ExportSystem.open(data_dir, catch_up_interval_seconds=0.05) as system:
        assert system.wait(running, timeout=WAIT).status is JobStatus.COMPLETED
        assert system.wait(queued, timeout=WAIT).status is JobStatus.COMPLETED
        assert system.status(running).attempts == 2
