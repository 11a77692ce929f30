"""One frozen dataclass per event type, and the one place events become JSON and back."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar

import orjson

from ..errors import IntegrityError


@dataclass(frozen=True, slots=True)
class Event:
    type: ClassVar[str]


@dataclass(frozen=True, slots=True)
class JobRequested(Event):
    type: ClassVar[str] = "JobRequested"
    tenant: str
    dataset: str
    format: str
    filters: dict[str, str | None]
    limit: int | None
    compression: str | None
    idempotency_key: str | None = None
    request_digest: str | None = None
    max_records: int | None = None
    accepted_by: str | None = None


@dataclass(frozen=True, slots=True)
class JobStarted(Event):
    type: ClassVar[str] = "JobStarted"
    attempt: int
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class JobProgressed(Event):
    type: ClassVar[str] = "JobProgressed"
    rows: int


@dataclass(frozen=True, slots=True)
class JobCompleted(Event):
    """The retention is recorded so that replay never depends on today's setting; the job
    expires that many seconds after this event's recorded_at (its finish time)."""

    type: ClassVar[str] = "JobCompleted"
    rows: int
    bytes: int
    sha256: str
    truncated: bool
    file_name: str
    retention_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class JobFailed(Event):
    type: ClassVar[str] = "JobFailed"
    error: str
    attempt: int
    will_retry: bool
    retention_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class JobCancelled(Event):
    type: ClassVar[str] = "JobCancelled"
    reason: str | None = None
    retention_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class JobExpired(Event):
    type: ClassVar[str] = "JobExpired"
    file_deleted: bool = True


# -- webhooks (SPEC §9): a registration is a stream, and so is each delivery -----------------


@dataclass(frozen=True, slots=True)
class WebhookRegistered(Event):
    """The secret is kept here because every node signs with it; audit prints it masked."""

    type: ClassVar[str] = "WebhookRegistered"
    tenant: str
    url: str
    events: list[str]
    secret: str


@dataclass(frozen=True, slots=True)
class WebhookDeleted(Event):
    type: ClassVar[str] = "WebhookDeleted"


@dataclass(frozen=True, slots=True)
class DeliveryScheduled(Event):
    """`body` is the exact JSON sent on every attempt, so a retry repeats it byte for byte."""

    type: ClassVar[str] = "DeliveryScheduled"
    tenant: str
    webhook_id: str
    job_id: str
    event_type: str
    body: str


@dataclass(frozen=True, slots=True)
class DeliveryAttempted(Event):
    """A claim: appended at the stream's expected version, so one node makes each attempt."""

    type: ClassVar[str] = "DeliveryAttempted"
    attempt: int
    owner: str


@dataclass(frozen=True, slots=True)
class DeliverySucceeded(Event):
    type: ClassVar[str] = "DeliverySucceeded"
    attempt: int
    status: int


@dataclass(frozen=True, slots=True)
class DeliveryFailed(Event):
    """One failed attempt with attempts left; the next is due at `next_attempt_at`."""

    type: ClassVar[str] = "DeliveryFailed"
    attempt: int
    error: str
    status: int | None
    refused: bool
    delay_seconds: float
    next_attempt_at: str


@dataclass(frozen=True, slots=True)
class DeliveryGaveUp(Event):
    type: ClassVar[str] = "DeliveryGaveUp"
    attempt: int
    error: str
    status: int | None = None
    refused: bool = False


JOB_EVENT_TYPES = frozenset(
    cls.type
    for cls in (
        JobRequested,
        JobStarted,
        JobProgressed,
        JobCompleted,
        JobFailed,
        JobCancelled,
        JobExpired,
    )
)
WEBHOOK_EVENT_TYPES = (
    WebhookRegistered,
    WebhookDeleted,
    DeliveryScheduled,
    DeliveryAttempted,
    DeliverySucceeded,
    DeliveryFailed,
    DeliveryGaveUp,
)
EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        JobRequested,
        JobStarted,
        JobProgressed,
        JobCompleted,
        JobFailed,
        JobCancelled,
        JobExpired,
        *WEBHOOK_EVENT_TYPES,
    )
}
# Fields never printed or served as they are stored (audit masks them).
SECRET_FIELDS = frozenset({"secret"})
MASK = "********"
_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {
    cls: tuple(sorted(f.name for f in fields(cls))) for cls in EVENT_TYPES.values()
}
# Each type's exact field names; replay's fast path reads them too.
ALLOWED_FIELDS = {cls.type: frozenset(names) for cls, names in _FIELD_NAMES.items()}
_REQUIRED = {
    cls.type: frozenset(f.name for f in fields(cls) if f.default is MISSING)
    for cls in EVENT_TYPES.values()
}
_DEFAULTS = {
    cls.type: {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    for cls in EVENT_TYPES.values()
}


def data_of(event: Event) -> dict[str, Any]:
    """An event's fields as a dict, shallow (no deep copy as `asdict` makes)."""
    names = _FIELD_NAMES.get(type(event)) or [f.name for f in fields(event)]
    return {name: getattr(event, name) for name in names}


def public_data(event: Event) -> dict[str, Any]:
    """`data_of` with secrets masked: what audit prints and routes serve."""
    data = data_of(event)
    for name in SECRET_FIELDS & data.keys():
        data[name] = MASK
    return data


def encode_data(event: Event) -> bytes:
    """The canonical JSON of an event's data: sorted keys, compact, UTF-8."""
    return orjson.dumps(data_of(event), option=orjson.OPT_SORT_KEYS)


def decode_data(type_name: str, data: str | bytes) -> dict[str, Any]:
    """Stored data as a checked dict of every field of its type (defaults filled in).

    The same checks as building the event, without building it: replaying a long log folds
    these dicts directly. Unknown types, unknown fields and missing fields are errors.
    """
    allowed = ALLOWED_FIELDS.get(type_name)
    if allowed is None:
        raise IntegrityError(f"unknown event type {type_name!r} in the log")
    try:
        fields_ = orjson.loads(data)
        keys = fields_.keys()
    except orjson.JSONDecodeError as e:
        raise IntegrityError(f"event {type_name} data is not JSON: {e}") from e
    except AttributeError:
        raise IntegrityError(f"event {type_name} data is not a JSON object") from None
    if keys == allowed:  # the usual case, one set comparison
        return fields_
    if not keys <= allowed:
        raise IntegrityError(f"event {type_name} has unknown fields {sorted(keys - allowed)}")
    if not _REQUIRED[type_name] <= keys:
        missing = sorted(_REQUIRED[type_name] - keys)
        raise IntegrityError(f"event {type_name} lacks fields {missing}")
    return {**_DEFAULTS[type_name], **fields_}  # written before a field with a default existed


def decode(type_name: str, data: dict[str, Any] | str | bytes) -> Event:
    """Turn a stored (type, data) pair back into its event; unknown types are an error."""
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise IntegrityError(f"unknown event type {type_name!r} in the log")
    if not isinstance(data, dict):
        data = decode_data(type_name, data)
    try:
        return cls(**data)
    except TypeError as e:
        raise IntegrityError(f"event {type_name} does not decode: {e}") from e


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: its place in the log and its chained hash."""

    seq: int
    stream_id: str
    version: int
    event: Event
    recorded_at: str
    hash: str

    @property
    def type(self) -> str:
        return self.event.type

    def to_document(self) -> dict[str, Any]:
        data = asdict(self.event)
        for name in SECRET_FIELDS & data.keys():
            data[name] = MASK
        return {
            "seq": self.seq,
            "version": self.version,
            "type": self.type,
            "data": data,
            "recorded_at": self.recorded_at,
        }
