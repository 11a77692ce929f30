"""A node that lost its lease cannot finish the job another node took over: its completion is
appended at the version it knew, and the log refuses it (expected version); its file, named
for its own attempt, never touches the file of the attempt that completes.

Deterministic, in one process: node a's heartbeat and LISTEN thread are stopped (what a long
pause or a network cut does to them), so it neither renews nor hears of the takeover; node b
sees its lease run out, runs attempt 2 to completion; then a's export of attempt 1 is let
finish and reports Done at the old version."""

from __future__ import annotations

import hashlib
import threading

import pytest

from silverexport import ExportRequest, JobStatus
from silverexport.silver.writers import export_to_file
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


class HeldAfterCommit:
    """A store's writers, each held right after its commit until the test lets it go: the
    file is under its final name, and its attempt has not yet reported Done."""

    def __init__(self, storage):
        self._open = storage.open_writer
        self.committed = threading.Event()
        self.release = threading.Event()

    def __call__(self, key: str, attempt: int = 1):
        return _HeldWriter(self._open(key, attempt), self)


class _HeldWriter:
    def __init__(self, writer, held: HeldAfterCommit):
        self._writer, self._held, self.key = writer, held, writer.key

    def write(self, data: bytes) -> int:
        return self._writer.write(data)

    def commit(self) -> None:
        self._writer.commit()
        self._held.committed.set()
        assert self._held.release.wait(WAIT)

    def abort(self) -> None:
        self._writer.abort()


class HeldStart:
    """The real export, held before its first byte until the test lets it go."""

    def __init__(self):
        self.began = threading.Event()
        self.go = threading.Event()

    def __call__(self, *args, **kwargs):
        self.began.set()
        assert self.go.wait(WAIT)
        return export_to_file(*args, **kwargs)


@pytest.fixture(params=["file", "s3"])
def shared_store(request, tmp_path, monkeypatch) -> str:
    """SILVEREXPORT_STORAGE_URL of a store both nodes use: a directory, or a bucket."""
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        monkeypatch.setenv("SILVEREXPORT_S3_ENDPOINT_URL", server.endpoint_url)
        url = f"s3://{bucket}/exports/"
    else:
        url = (tmp_path / "shared").as_uri()
    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", url)
    return url


def test_a_superseded_attempt_finishing_between_the_new_ones_commit_and_its_completion(
    tmp_path, postgres_url, monkeypatch, open_system, shared_store
):
    """Node a, frozen past its lease, finishes attempt 1 after node b has committed attempt
    2's file and before b records JobCompleted. Each attempt has a file name of its own: a's
    late commit and its cleanup after the refused append touch only attempt 1's file, and the
    job serves b's file with the sha256 b records. (With one name per job, a's file replaced
    b's: the job served a's rows under b's sha256.) The nodes' Silver stores differ, so the two
    attempts' files differ too."""
    monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", postgres_url)
    stale, fresh = HeldStart(), HeldStart()
    a = open_system(
        tmp_path / "a",
        node_id="a",
        lease_seconds=1,
        catch_up_interval_seconds=60,  # a learns nothing by polling
        progress_interval_seconds=60,  # and appends no progress: its next append is the Done
        export_fn=stale,
    )
    a.store.ingest("token_transfers", transfer_rows(40))
    job_id = a.submit(TRANSFERS).job_id
    assert stale.began.wait(WAIT)  # attempt 1 runs on a, nothing written yet
    a._wakeup.close()  # a hears no NOTIFY ...
    a.owner._stop.set()  # ... and renews no lease: frozen, as far as b can tell

    b = open_system(tmp_path / "b", node_id="b", lease_seconds=1, export_fn=fresh)
    b.store.ingest("token_transfers", transfer_rows(30))
    assert fresh.began.wait(WAIT)  # b took the job over: attempt 2, before its first byte
    held = HeldAfterCommit(b.storage)
    monkeypatch.setattr(b.storage, "open_writer", held)
    fresh.go.set()
    assert held.committed.wait(WAIT)  # attempt 2's file is whole; JobCompleted not yet sent
    assert b.status(job_id).status is JobStatus.RUNNING

    stale.go.set()  # a's attempt 1 writes, commits, and reports Done at the version it knew
    wait_until(
        lambda: a.cached_status(job_id).attempts == 2, what="a caught up after its refused append"
    )
    a.supervisor.proxy().pending.get()  # an ask: a has finished handling its Done
    assert [e.type for e in b.events(job_id)].count("JobCompleted") == 0
    assert len(stored(b)) == 1  # a removed its file, and only that

    held.release.set()  # b reports Done and records JobCompleted
    done = b.wait(job_id, timeout=WAIT)
    assert (done.status, done.attempts, done.rows, done.owner) == (JobStatus.COMPLETED, 2, 30, "b")
    for node in (a, b):
        body = b"".join(node.file_chunks(done))
        assert hashlib.sha256(body).hexdigest() == done.sha256
    assert stored(b) == [done.file_name] == [f"{job_id}.a2.csv"]


def stored(system) -> list[str]:
    """Every file and partial the shared store holds."""
    partials = [f"partial:{p.key}" for p in system.storage.list_partials()]
    return sorted(system.storage.list()) + partials
