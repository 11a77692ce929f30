"""Value types shared by every layer: requests, job views and their enums (all immutable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

FILTER_KEYS = ("target_id", "network", "from", "to")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"

    @property
    def extension(self) -> str:
        return self.value

    @property
    def content_type(self) -> str:
        return "application/x-ndjson" if self is ExportFormat.JSONL else "text/csv; charset=utf-8"


class Compression(StrEnum):
    GZIP = "gzip"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def terminal(self) -> bool:
        return self is not JobStatus.QUEUED and self is not JobStatus.RUNNING


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What a client asks for. Field names follow the HTTP body; `from_` is the body's `from`."""

    dataset: str
    format: ExportFormat | str
    target_id: str | None = None
    network: str | None = None
    from_: str | None = None
    to: str | None = None
    limit: int | None = None
    compression: Compression | str | None = None

    def filters(self) -> dict[str, str | None]:
        return {
            "target_id": self.target_id,
            "network": self.network,
            "from": self.from_,
            "to": self.to,
        }


@dataclass(frozen=True, slots=True)
class JobView:
    """One job as the views know it; `to_document()` is the HTTP job document."""

    job_id: str
    dataset: str
    format: ExportFormat
    compression: Compression | None
    filters: dict[str, str | None]
    limit: int | None
    status: JobStatus
    attempts: int
    rows: int
    bytes: int | None
    sha256: str | None
    truncated: bool
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    expires_at: str | None
    tenant: str = field(default="", compare=True)
    file_name: str | None = None
    idempotency_key: str | None = None
    request_digest: str | None = None
    version: int = 0
    owner: str | None = None
    max_records: int | None = None
    queue_position: int | None = None  # while queued: 1 + the queued jobs that start before it

    @property
    def download_url(self) -> str | None:
        if self.status is JobStatus.COMPLETED:
            return f"/v1/export/jobs/{self.job_id}/download"
        return None

    @property
    def extension(self) -> str:
        ext = self.format.extension
        return f"{ext}.gz" if self.compression else ext

    @property
    def download_name(self) -> str:
        return f"{self.dataset}-{self.job_id}.{self.extension}"

    def to_document(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "dataset": self.dataset,
            "format": self.format.value,
            "compression": self.compression.value if self.compression else None,
            "filters": {key: self.filters.get(key) for key in FILTER_KEYS},
            "limit": self.limit,
            "status": self.status.value,
            "queue_position": self.queue_position,
            "attempts": self.attempts,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "truncated": self.truncated,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "expires_at": self.expires_at,
            "download_url": self.download_url,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
