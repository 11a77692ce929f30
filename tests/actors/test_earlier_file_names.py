"""Jobs completed by earlier versions, whose file is `<job_id>.<ext>` (one name per job, no
attempt in it): served, expired and swept by the name their JobCompleted records."""

from __future__ import annotations

import hashlib

from silverexport import JobStatus
from silverexport.config import Settings
from silverexport.events.log import Append
from silverexport.events.types import JobCompleted, JobExpired, JobStarted

from .conftest import wait_until
from .history import request, write_jobs

KEPT, DUE = "ab" * 16, "cd" * 16
BODY = b"target_id,amount\r\nt1,1.000000000000000001\r\n"


def completed_under_the_earlier_name(job_id: str, retention: float) -> Append:
    return Append(
        job_id,
        0,
        [
            request("old", owner="gone-1-x", key=job_id),
            JobStarted(attempt=1, owner="gone-1-x"),
            JobCompleted(
                rows=1,
                bytes=len(BODY),
                sha256=hashlib.sha256(BODY).hexdigest(),
                truncated=False,
                file_name=f"{job_id}.csv",
                retention_seconds=retention,
            ),
        ],
    )


def test_a_job_completed_under_the_earlier_name_downloads_expires_and_is_swept(
    open_system, tmp_path
):
    data_dir = tmp_path / "data"
    storage = Settings.from_env(data_dir=data_dir).open_storage()  # the store the suite runs on
    try:
        # The last one: a superseded attempt's file that a crash left beside the job's file.
        for key in (f"{KEPT}.csv", f"{DUE}.csv", f"{KEPT}.a2.csv"):
            writer = storage.open_writer(key)
            writer.write(BODY)
            writer.commit()
    finally:
        storage.close()
    write_jobs(
        data_dir / "events",
        [
            completed_under_the_earlier_name(KEPT, retention=3600),
            completed_under_the_earlier_name(DUE, retention=0),
        ],
    )

    system = open_system(data_dir, expiry_interval_seconds=0.05)
    expired = wait_until(
        lambda: (v := system.status(DUE)).status is JobStatus.EXPIRED and v, what="expiry"
    )
    assert expired.file_name == f"{DUE}.csv"
    assert [e.event for e in system.events(DUE) if e.type == "JobExpired"] == [
        JobExpired(file_deleted=True)
    ]
    wait_until(
        lambda: system.storage.list() == [f"{KEPT}.csv"],
        what="the expired job's file and the stray one removed",
    )
    system.supervisor.proxy().sweep_stale_files().get()  # one more, now: the file stays
    assert system.storage.list() == [f"{KEPT}.csv"]
    view = system.status(KEPT)
    assert (view.status, view.file_name) == (JobStatus.COMPLETED, f"{KEPT}.csv")
    body = b"".join(system.file_chunks(view))
    assert body == BODY and hashlib.sha256(body).hexdigest() == view.sha256
