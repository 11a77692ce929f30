"""Jobs written straight into a data dir's log, as another (or an earlier) process left them."""

from __future__ import annotations

from pathlib import Path

from silverexport.config import Settings
from silverexport.events.backends import open_event_log, open_views
from silverexport.events.log import Append
from silverexport.events.types import JobCompleted, JobRequested, JobStarted
from silverexport.model import ExportRequest
from silverexport.validation import check_request


def request(tenant: str, *, owner: str, target: str = "t1", key: str | None = None):
    return JobRequested(
        tenant=tenant,
        dataset="token_transfers",
        format="csv",
        filters={"target_id": target, "network": None, "from": None, "to": None},
        limit=None,
        compression=None,
        idempotency_key=key,
        request_digest=check_request(
            ExportRequest(dataset="token_transfers", format="csv", target_id=target),
            max_records=100_000,
        ).digest,
        max_records=100_000,
        accepted_by=owner,
    )


def write_jobs(events_path: Path, appends: list[Append]) -> None:
    """Append with the views kept in step, as any process of this project does."""
    log = _open(events_path)
    log.projector = open_views(log)
    try:
        for i in range(0, len(appends), 2000):
            log.append_batch(appends[i : i + 2000])
    finally:
        log.close()


def finished_jobs(
    n: int, *, tenant: str = "old", owner: str = "gone-1-x", retention: float | None = None
) -> list[Append]:
    """n completed jobs (files long gone is fine: only their views and events are read)."""
    return [
        Append(
            f"{i:032x}",
            0,
            [
                request(tenant, owner=owner, key=f"k{i}"),
                JobStarted(attempt=1, owner=owner),
                JobCompleted(
                    rows=1,
                    bytes=1,
                    sha256="0" * 64,
                    truncated=False,
                    file_name=f"{i:032x}.csv",
                    retention_seconds=retention,
                ),
            ],
        )
        for i in range(n)
    ]


def _open(events_path: Path):
    """The log of the data dir `events_path` is in, on the backend the suite runs on."""
    return open_event_log(Settings.from_env(data_dir=events_path.parent))


def versions(events_path: Path, job_ids: list[str]) -> dict[str, int]:
    log = _open(events_path)
    try:
        return {j: max(r.version for r in log.read(stream_id=j)) for j in job_ids}
    finally:
        log.close()
