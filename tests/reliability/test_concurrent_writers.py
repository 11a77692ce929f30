"""Two processes appending to one event log: this one (the server's system) and an embedding
ingestion process, each submitting jobs, running them, and cancelling some of the other's,
while the ingestion process writes Silver rows inside its ingestion slots.

Size: SILVEREXPORT_CONCURRENT_SECONDS (default 6 s), or 60 s with SILVEREXPORT_SOAK=1.
Afterwards nothing may be lost or duplicated, the log must verify, and the views must equal a
fresh replay. The figures are printed and written to concurrent_writers.json in the tmp dir.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from silverexport import ExportSystem, JobStatus
from silverexport.config import Settings
from silverexport.events.audit import verify
from silverexport.events.backends import open_event_log, open_views
from silverexport.events.log import EventLog
from tests.actors.conftest import transfer_rows
from tests.stored import stored_bytes

from .concurrent_writer_worker import BATCH, TARGETS, TIMEOUT, Side

ROOT = Path(__file__).resolve().parents[2]
TERMINAL_TYPES = {"JobCompleted", "JobCancelled"}


def duration() -> float:
    if os.environ.get("SILVEREXPORT_SOAK") == "1":
        return 60.0
    return float(os.environ.get("SILVEREXPORT_CONCURRENT_SECONDS", "6"))


def check_lifecycles(log: EventLog) -> Counter:
    """Per stream: one JobRequested first, attempts 1..k, at most one final outcome with only
    JobExpired after it, versions 1..n. Returns the count of each event type."""
    types: Counter = Counter()
    streams: dict[str, list] = {}
    for rec in log.read():
        streams.setdefault(rec.stream_id, []).append(rec)
        types[rec.event.type] += 1
    for job_id, recs in streams.items():
        assert [r.version for r in recs] == list(range(1, len(recs) + 1)), job_id
        kinds = [r.event.type for r in recs]
        assert kinds[0] == "JobRequested" and kinds.count("JobRequested") == 1, (job_id, kinds)
        attempts = [r.event.attempt for r in recs if r.event.type == "JobStarted"]
        assert attempts == list(range(1, len(attempts) + 1)), (job_id, kinds)
        final = [
            i
            for i, r in enumerate(recs)
            if r.event.type in TERMINAL_TYPES
            or (r.event.type == "JobFailed" and not r.event.will_retry)
        ]
        assert len(final) <= 1, (job_id, kinds)
        if final:
            assert set(kinds[final[0] + 1 :]) <= {"JobExpired"}, (job_id, kinds)
        assert kinds.count("JobExpired") <= 1, (job_id, kinds)
    return types


@pytest.mark.timeout(duration() + 240)  # the run, then draining and checking it all
def test_two_processes_append_to_one_log(tmp_path, request, capsys):
    seconds = duration()
    data_dir = tmp_path / "data"
    out = tmp_path / "worker.json"
    started = time.monotonic()
    with ExportSystem.open(
        data_dir,
        max_concurrent_exports=2,
        catch_up_interval_seconds=0.05,
        progress_interval_seconds=0.0,
    ) as system:
        for i, target in enumerate(TARGETS):
            system.store.ingest("token_transfers", transfer_rows(BATCH, target=target, start=i))
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.concurrent_writer_worker",
                str(data_dir),
                str(seconds),
                str(out),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stdout.readline().strip() == "READY"
            server = Side(system, "server", "ingest", ingests=False)
            server.run(seconds)
            assert worker.stdout.readline().strip() == "DONE"
            assert worker.wait(timeout=TIMEOUT) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=TIMEOUT)
        theirs = orjson.loads(out.read_bytes())
        system.catch_up()
        views = {}
        for job_id in server.job_ids + theirs["job_ids"]:
            views[job_id] = system.wait(job_id, timeout=TIMEOUT)  # known here, and finished
        assert len(views) == len(server.job_ids) + len(theirs["job_ids"]), "a job id repeated"
        for view in views.values():
            assert view.status in (JobStatus.COMPLETED, JobStatus.CANCELLED), view
            if view.status is JobStatus.COMPLETED:
                data = stored_bytes(system, view)
                assert hashlib.sha256(data).hexdigest() == view.sha256
                text = gzip.decompress(data) if view.compression else data
                if view.format.value == "csv":
                    lines = len(list(csv.reader(io.StringIO(text.decode(), newline="")))) - 1
                else:
                    lines = text.count(b"\n")
                # Ingest batches are all or nothing and each holds BATCH rows of one target:
                # an export from one snapshot holds whole batches only.
                assert view.rows == lines and view.rows % BATCH == 0, view
        assert system.storage.list_partials() == []
        mine_owner = system.owner.owner_id
    elapsed = time.monotonic() - started

    log = open_event_log(Settings.from_env(data_dir=data_dir), create=False)
    try:
        assert log.first_bad_seq() is None
        seqs = [row[0] for row in log.read_raw()]
        assert seqs == list(range(1, len(seqs) + 1))
        types = check_lifecycles(log)
        report = verify(log, open_views(log, create=False))
        assert report.ok, report.to_document()
        requested_by = Counter(
            rec.event.accepted_by for rec in log.read() if rec.event.type == "JobRequested"
        )
        by_stream_owner = Counter()
        accepted = {}
        for rec in log.read():
            if rec.event.type == "JobRequested":
                accepted[rec.stream_id] = rec.event.accepted_by
            by_stream_owner[accepted[rec.stream_id]] += 1
        cross_cancels = sum(
            1
            for job_id in views
            if [e.type for e in log.read(stream_id=job_id)][-1] == "JobCancelled"
            and "JobStarted" in [e.type for e in log.read(stream_id=job_id)]
        )
        events = log.count()
    finally:
        log.close()
    assert requested_by[mine_owner] == len(server.job_ids)
    assert requested_by[theirs["owner"]] == len(theirs["job_ids"])
    statuses = Counter(v.status.value for v in views.values())
    figures = {
        "seconds": round(elapsed, 1),
        "events": events,
        "events_in_server_jobs": by_stream_owner[mine_owner],
        "events_in_ingest_jobs": by_stream_owner[theirs["owner"]],
        "jobs_server": len(server.job_ids),
        "jobs_ingest": len(theirs["job_ids"]),
        "completed": statuses["completed"],
        "cancelled": statuses["cancelled"],
        "cancels_server": server.figures["cancels"],
        "cancels_ingest": theirs["cancels"],
        "cancel_conflicts": server.figures["cancel_conflicts"] + theirs["cancel_conflicts"],
        "running_jobs_cancelled_across": cross_cancels,
        "ingested_rows": theirs["ingested_rows"],
        "event_types": dict(sorted(types.items())),
        "lost": 0,
        "duplicated": 0,
    }
    (tmp_path / "concurrent_writers.json").write_bytes(orjson.dumps(figures))
    request.node.user_properties.append(("figures", figures))
    line = "concurrent writers: " + ", ".join(
        f"{k} {v}" for k, v in figures.items() if k != "event_types"
    )
    with capsys.disabled():  # shown whether or not output is captured
        print("\n" + line, flush=True)
