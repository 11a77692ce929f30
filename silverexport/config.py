"""Every setting: one name, one default, read in one place (flags override SILVEREXPORT_* vars)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import ValidationError, quoted

MAX_ATTEMPTS = 3
# A node id is a file name (owners/<id>.lock) and a database key: plain, short, printable.
NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("data")
    max_records: int = 100_000
    job_ttl_seconds: float = 86_400
    api_keys: str = ""
    max_concurrent_exports: int = 4
    ingestion_reserve: int = 2
    export_reserve: int = 1
    slots_total: int = 0  # 0: max_concurrent_exports + ingestion_reserve
    expiry_interval_seconds: float = 60.0
    catch_up_interval_seconds: float = 1.0
    progress_interval_seconds: float = 1.0
    max_body_bytes: int = 64 * 1024
    event_log_url: str = ""  # "": the SQLite file events.db under the data dir (SPEC §8)
    silver_url: str = ""  # "": the SQLite file silver.db under the data dir (SPEC §8)
    # Observability (SPEC §9, §10): `off` removes GET /metrics; streams send a comment this often
    # while idle and look for new events in the log this often.
    metrics: str = "on"
    stream_keepalive_seconds: float = 15.0
    stream_poll_seconds: float = 0.25
    max_queued_per_tenant: int = 1000
    # Webhooks (SPEC §9): backoff starts here and doubles; a 2xx within the timeout succeeds.
    webhook_retry_seconds: float = 10.0
    webhook_max_attempts: int = 12
    webhook_timeout_seconds: float = 10.0
    webhook_max_concurrent: int = 16  # deliveries in flight at once, per process
    webhook_allow_hosts: str = ""  # host names, addresses and CIDR blocks exempt from SSRF refusal
    log_format: str = "text"  # or "json": one JSON object per log line (SPEC §10)
    storage_url: str = ""  # "": file:// + data_dir/exports (SPEC §8)
    s3_endpoint_url: str = ""  # "": AWS's own
    # Several nodes (SPEC §8): "" is the host name and process id; a node whose lease in the
    # event log's database is older than this is dead, and its jobs are recovered elsewhere.
    node_id: str = ""
    lease_seconds: float = 15.0

    @property
    def total_slots(self) -> int:
        return self.slots_total or self.max_concurrent_exports + self.ingestion_reserve

    @property
    def silver_path(self) -> Path:
        """The SQLite Silver store's file (used when SILVEREXPORT_SILVER_URL is unset)."""
        return self.data_dir / "silver.db"

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.db"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def owners_dir(self) -> Path:
        return self.data_dir / "owners"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then SILVEREXPORT_<NAME> variables, then explicit overrides (flags)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"SILVEREXPORT_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.max_records < 1:
            raise ValidationError("SILVEREXPORT_MAX_RECORDS must be at least 1")
        if self.max_concurrent_exports < 1:
            raise ValidationError("SILVEREXPORT_MAX_CONCURRENT_EXPORTS must be at least 1")
        if self.ingestion_reserve < 0 or self.export_reserve < 0:
            raise ValidationError("slot reserves must not be negative")
        if self.export_reserve + self.ingestion_reserve > self.total_slots:
            raise ValidationError(
                "SILVEREXPORT_EXPORT_RESERVE + SILVEREXPORT_INGESTION_RESERVE "
                f"exceed the {self.total_slots} slots in all"
            )
        if self.max_queued_per_tenant < 1:
            raise ValidationError("SILVEREXPORT_MAX_QUEUED_PER_TENANT must be at least 1")
        if self.log_format not in ("text", "json"):
            raise ValidationError(
                f'SILVEREXPORT_LOG_FORMAT must be "text" or "json", not {self.log_format!r}'
            )
        if self.job_ttl_seconds < 0:
            raise ValidationError("SILVEREXPORT_JOB_TTL_SECONDS must not be negative")
        if self.metrics not in ("on", "off"):
            raise ValidationError(
                f'SILVEREXPORT_METRICS must be "on" or "off", not {self.metrics!r}'
            )
        if not 0 < self.stream_keepalive_seconds <= 15:
            raise ValidationError("SILVEREXPORT_STREAM_KEEPALIVE_SECONDS must be in (0, 15]")
        if self.stream_poll_seconds <= 0:
            raise ValidationError("SILVEREXPORT_STREAM_POLL_SECONDS must be positive")
        from .webhooks.targets import TargetPolicy  # here: webhooks imports this module

        TargetPolicy(self.webhook_allow_hosts)  # names the setting if it cannot be read
        if self.webhook_retry_seconds <= 0 or self.webhook_timeout_seconds <= 0:
            raise ValidationError(
                "SILVEREXPORT_WEBHOOK_RETRY_SECONDS and SILVEREXPORT_WEBHOOK_TIMEOUT_SECONDS "
                "must be positive"
            )
        if self.webhook_max_attempts < 1 or self.webhook_max_concurrent < 1:
            raise ValidationError(
                "SILVEREXPORT_WEBHOOK_MAX_ATTEMPTS and SILVEREXPORT_WEBHOOK_MAX_CONCURRENT "
                "must be at least 1"
            )
        if self.node_id and not NODE_ID.fullmatch(self.node_id):
            raise ValidationError(
                "SILVEREXPORT_NODE_ID must be 1 to 128 letters, digits and . _ : @ - "
                f"(starting with a letter or digit), got {quoted(self.node_id)}"
            )
        if not 1 <= self.lease_seconds <= 3600:
            raise ValidationError("SILVEREXPORT_LEASE_SECONDS must be between 1 and 3600")
        if self.event_log_url:
            check_postgres_url("SILVEREXPORT_EVENT_LOG_URL", self.event_log_url)
        if self.silver_url:
            check_postgres_url("SILVEREXPORT_SILVER_URL", self.silver_url)
        self.open_storage(check_url_only=True)

    def open_storage(self, check_url_only: bool = False):
        """The export-file store SILVEREXPORT_STORAGE_URL names (ValidationError if bad)."""
        from .storage import StorageUrlError, open_storage
        from .storage.url import parse

        try:
            if check_url_only:
                parse(self.storage_url, self.data_dir)
                return None
            return open_storage(self.storage_url, self.data_dir, self.s3_endpoint_url)
        except StorageUrlError as e:
            raise ValidationError(str(e)) from None


POSTGRES_SCHEMES = ("postgresql", "postgres")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, fit for a message or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_postgres_url(setting: str, url: str) -> None:
    """A PostgreSQL URL must say postgresql:// (or postgres://), a host and a database."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as e:
        raise ValidationError(f"{setting} is not a valid URL ({e})") from None
    shown = redact_url(url) if "@" in url else url
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ValidationError(
            f"{setting} must be a postgresql:// or postgres:// URL, got {shown!r}"
        )
    if not parts.hostname or not parts.path.strip("/"):
        raise ValidationError(
            f"{setting} must name a host and a database (postgresql://user:password@host:port/"
            f"dbname), got {shown!r}"
        )


def _parse(name: str, kind: object, raw: str) -> object:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name == "int":
            return int(raw)
        if kind_name == "float":
            return float(raw)
        if kind_name == "Path":
            return Path(raw)
    except ValueError:
        raise ValidationError(
            f"SILVEREXPORT_{name.upper()} must be a number, got {raw!r}"
        ) from None
    return raw
