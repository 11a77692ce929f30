"""A node that lost its lease cannot finish the job another node took over: its completion is
appended at the version it knew, and the log refuses it (expected version).

Deterministic, in one process: node a's heartbeat and LISTEN thread are stopped (what a long
pause or a network cut does to them), so it neither renews nor hears of the takeover; node b
sees its lease run out, runs attempt 2 to completion; then a's export of attempt 1 is let
finish and reports Done at the old version."""

from __future__ import annotations

import hashlib

from silverexport import ExportRequest, JobStatus
from tests.actors.conftest import WAIT, GatedWriter, transfer_rows, wait_until

TRANSFERS = ExportRequest(dataset="token_transfers", format="csv")


def test_a_completion_at_a_superseded_attempt_is_refused_and_the_file_kept(
    tmp_path, postgres_url, monkeypatch, open_system
):
    shared = tmp_path / "shared"
    monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", postgres_url)
    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", shared.as_uri())
    gated = GatedWriter()
    a = open_system(
        tmp_path / "a",
        node_id="a",
        lease_seconds=1,
        catch_up_interval_seconds=60,  # a learns nothing by polling either
        progress_interval_seconds=60,  # and appends no progress: its next append is the Done
        export_fn=gated,
    )
    a.store.ingest("token_transfers", transfer_rows(40))
    job_id = a.submit(TRANSFERS).job_id
    assert gated.started.wait(WAIT)

    a._wakeup.close()  # a hears no NOTIFY ...
    a.owner._stop.set()  # ... and renews no lease: frozen, as far as the others can tell
    b = open_system(tmp_path / "b", node_id="b", lease_seconds=1)
    b.store.ingest("token_transfers", transfer_rows(40))
    done = b.wait(job_id, timeout=WAIT)
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 2)
    assert a.cached_status(job_id).status is JobStatus.RUNNING  # a still believes attempt 1

    gated.gate.set()  # a's attempt 1 finishes and reports Done at the version it knew
    wait_until(
        lambda: (
            a.cached_status(job_id) is not None
            and a.cached_status(job_id).status is JobStatus.COMPLETED
        ),
        what="a caught up after its refused append",
    )
    history = [e.type for e in b.events(job_id)]
    assert history.count("JobCompleted") == 1
    assert history[-1] == "JobCompleted" and history.count("JobStarted") == 2
    completed = b.status(job_id)
    assert completed.attempts == 2 and completed.owner == "b"
    body = b"".join(b.file_chunks(completed))
    assert hashlib.sha256(body).hexdigest() == completed.sha256  # the file is still there
    assert sorted(p.name for p in shared.iterdir()) == [completed.file_name]
