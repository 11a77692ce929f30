"""Turning what a client sent into a checked request, with errors that name the field."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import ValidationError, quoted
from .model import Compression, ExportFormat, ExportRequest
from .silver.catalog import KEY_MAX_LENGTH
from .timeutil import format_time, parse_canonical, parse_rfc3339

BODY_FIELDS = ("dataset", "format", "target_id", "network", "from", "to", "limit", "compression")
MAX_TEXT_FILTER = KEY_MAX_LENGTH  # ingest holds target_id and network to the same length


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request that passed every check; times are canonical UTC text."""

    dataset: str
    format: ExportFormat
    compression: Compression | None
    filters: dict[str, str | None]
    limit: int | None
    digest: str


def _enum(kind: type, value: Any, field: str) -> Any:
    if isinstance(value, kind):
        return value
    allowed = ", ".join(f'"{m.value}"' for m in kind)
    if not isinstance(value, str):
        raise ValidationError(f'"{field}" must be one of {allowed}', field=field)
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(
            f'"{field}" must be one of {allowed}, not {quoted(value)}', field=field
        ) from None


def _text_filter(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f'"{field}" must be a string', field=field)
    if not value or len(value) > MAX_TEXT_FILTER:
        raise ValidationError(
            f'"{field}" must be 1 to {MAX_TEXT_FILTER} characters long', field=field
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f'"{field}" is not valid Unicode text', field=field) from None
    return value


def _time_filter(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f'"{field}" must be an RFC 3339 time string', field=field)
    try:
        return format_time(parse_rfc3339(value))
    except ValueError as e:
        raise ValidationError(f'"{field}" is not a valid time: {e}', field=field) from None


def digest_of(payload: Any) -> str:
    """Requests are equal when their JSON is equal: hash the sorted-key encoding."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_request(
    request: ExportRequest, *, max_records: int, digest: str | None = None
) -> CheckedRequest:
    """Check every field of `request` against the catalog and the server's limits."""
    from .silver.catalog import get_dataset

    if not isinstance(request.dataset, str):
        raise ValidationError('"dataset" must be a string', field="dataset")
    dataset = get_dataset(request.dataset).name
    fmt = _enum(ExportFormat, request.format, "format")
    compression = (
        None
        if request.compression is None
        else _enum(Compression, request.compression, "compression")
    )
    if fmt is ExportFormat.PARQUET and compression is not None:
        raise ValidationError(
            '"compression" must be absent or null for "parquet", which is compressed inside '
            "the file (zstd)",
            field="compression",
        )
    frm = _time_filter(request.from_, "from")
    to = _time_filter(request.to, "to")
    if frm is not None and to is not None and parse_canonical(frm) >= parse_canonical(to):
        raise ValidationError('"from" must be before "to"', field="from")
    limit = request.limit
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValidationError('"limit" must be an integer', field="limit")
        if not 1 <= limit <= max_records:
            raise ValidationError(f'"limit" must be between 1 and {max_records}', field="limit")
    filters = {
        "target_id": _text_filter(request.target_id, "target_id"),
        "network": _text_filter(request.network, "network"),
        "from": frm,
        "to": to,
    }
    if digest is None:
        digest = digest_of(
            {
                "dataset": request.dataset,
                "format": str(request.format),
                "compression": None if request.compression is None else str(request.compression),
                **request.filters(),
                "limit": limit,
            }
        )
    return CheckedRequest(dataset, fmt, compression, filters, limit, digest)


def request_from_body(body: Any) -> ExportRequest:
    """The strict JSON body of POST /v1/export/dataset: unknown keys and wrong types refused."""
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(BODY_FIELDS))
    if unknown:
        raise ValidationError(
            f"unknown field {unknown[0]!r}; allowed fields: {', '.join(BODY_FIELDS)}",
            field=unknown[0],
            code="unknown_field",
        )
    for required in ("dataset", "format"):
        if body.get(required) is None:
            raise ValidationError(f'"{required}" is required', field=required)
    return ExportRequest(
        dataset=body["dataset"],
        format=body["format"],
        target_id=body.get("target_id"),
        network=body.get("network"),
        from_=body.get("from"),
        to=body.get("to"),
        limit=body.get("limit"),
        compression=body.get("compression"),
    )
