"""The component schemas of the job API (SPEC §5): the request, the job document and its
events. Built per app, since their limits (max_records) are the server's own settings."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..events.types import JOB_EVENT_TYPES
from ..job_pages import LIST_MAX
from ..model import Compression, ExportFormat, JobStatus
from ..validation import MAX_TEXT_FILTER
from .openapi_blocks import JOB_ID, TIME, nullable, ref


def job_schemas(settings: Settings, datasets: list[str]) -> dict[str, Any]:
    text_filter = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_FILTER}
    formats = [f.value for f in ExportFormat]
    compressions = [c.value for c in Compression]
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                        "message": {"type": "string", "minLength": 1},
                    },
                }
            },
        },
        "ExportRequest": {
            "type": "object",
            "required": ["dataset", "format"],
            "additionalProperties": False,
            "properties": {
                "dataset": {"type": "string", "enum": datasets},
                "format": {"type": "string", "enum": formats},
                "target_id": nullable(text_filter),
                "network": nullable(text_filter),
                "from": nullable({"type": "string", "format": "date-time"}),
                "to": nullable({"type": "string", "format": "date-time"}),
                "limit": nullable(
                    {"type": "integer", "minimum": 1, "maximum": settings.max_records}
                ),
                "compression": nullable({"type": "string", "enum": compressions}),
            },
            # Parquet is compressed inside the file: "compression" must stay null with it.
            "anyOf": [
                {"properties": {"format": {"enum": [f for f in formats if f != "parquet"]}}},
                {"properties": {"compression": {"type": "null"}}},
            ],
            "description": '"from" is inclusive, "to" exclusive, and "from" must be before "to"; '
            '"compression" must be absent or null when "format" is "parquet".',
        },
        "Job": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "job_id",
                "dataset",
                "format",
                "compression",
                "filters",
                "limit",
                "status",
                "queue_position",
                "attempts",
                "rows",
                "bytes",
                "sha256",
                "truncated",
                "error",
                "created_at",
                "started_at",
                "finished_at",
                "expires_at",
                "download_url",
            ],
            "properties": {
                "job_id": JOB_ID,
                "dataset": {"type": "string"},
                "format": {"type": "string", "enum": formats},
                "compression": nullable({"type": "string", "enum": compressions}),
                "filters": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["target_id", "network", "from", "to"],
                    "properties": {
                        "target_id": nullable({"type": "string"}),
                        "network": nullable({"type": "string"}),
                        "from": nullable(TIME),
                        "to": nullable(TIME),
                    },
                },
                "limit": nullable({"type": "integer", "minimum": 1}),
                "status": {"type": "string", "enum": [s.value for s in JobStatus]},
                "queue_position": nullable({"type": "integer", "minimum": 1}),
                "attempts": {"type": "integer", "minimum": 0},
                "rows": {"type": "integer", "minimum": 0},
                "bytes": nullable({"type": "integer", "minimum": 0}),
                "sha256": nullable({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
                "truncated": {"type": "boolean"},
                "error": nullable({"type": "string"}),
                "created_at": TIME,
                "started_at": nullable(TIME),
                "finished_at": nullable(TIME),
                "expires_at": nullable(TIME),
                "download_url": nullable(
                    {"type": "string", "pattern": "^/v1/export/jobs/[0-9a-f]{32}/download$"}
                ),
            },
        },
        "JobList": {
            "type": "object",
            "additionalProperties": False,
            "required": ["jobs", "next_cursor"],
            "properties": {
                "jobs": {"type": "array", "items": ref("Job"), "maxItems": LIST_MAX},
                "next_cursor": nullable({"type": "string", "minLength": 1}),
            },
        },
        "Event": {
            "type": "object",
            "additionalProperties": False,
            "required": ["seq", "version", "type", "data", "recorded_at"],
            "properties": {
                "seq": {"type": "integer", "minimum": 1},
                "version": {"type": "integer", "minimum": 1},
                "type": {"type": "string", "enum": sorted(JOB_EVENT_TYPES)},
                "data": {"type": "object"},
                "recorded_at": TIME,
            },
        },
        "EventList": {
            "type": "object",
            "additionalProperties": False,
            "required": ["events"],
            "properties": {"events": {"type": "array", "items": ref("Event")}},
        },
    }
