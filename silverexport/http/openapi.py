"""The OpenAPI 3.1 document of SPEC §5, built per app so that its limits are the server's own.

Outside fuzzers hold the server to this document: every status a route can answer is listed,
and tests validate real responses against these schemas.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..events.types import JOB_EVENT_TYPES
from ..model import Compression, ExportFormat, JobStatus
from ..silver.catalog import DATASETS
from ..system import LIST_MAX
from ..validation import MAX_TEXT_FILTER
from .jobs import DEFAULT_PAGE
from .openapi_live import live_paths

TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"}
JOB_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
FILE_TYPES = (
    "application/x-ndjson",
    "text/csv; charset=utf-8",
    "application/gzip",
    "application/vnd.apache.parquet",
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid request; the message names the field",
        401: "Missing or wrong API key",
        404: "Unknown job (or another tenant's)",
        409: "Conflict with the job's state; the message says the status",
        410: "The job expired and its file was deleted",
        412: "If-Match (or If-Unmodified-Since) did not match the file",
        413: "The request body is too large",
        416: "The range is not satisfiable; Content-Range gives the file's size",
        429: "The tenant has as many jobs queued as it may; retry after Retry-After seconds",
        503: "The export system is busy or shutting down, or its database is out of reach; "
        "retry after Retry-After seconds",
    }
    out: dict[str, Any] = {}
    for status in statuses:
        headers: dict[str, Any] = {}
        if status == 401:
            headers["WWW-Authenticate"] = {"required": True, "schema": {"type": "string"}}
        if status in (429, 503):
            headers["Retry-After"] = {"required": True, "schema": {"type": "string"}}
        if status == 416:
            headers["Content-Range"] = {"required": True, "schema": {"type": "string"}}
        response = _json(reasons[status], _ref("Error"))
        if headers:
            response["headers"] = headers
        out[str(status)] = response
    return out


def _schemas(settings: Settings, datasets: list[str]) -> dict[str, Any]:
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
                "target_id": _nullable(text_filter),
                "network": _nullable(text_filter),
                "from": _nullable({"type": "string", "format": "date-time"}),
                "to": _nullable({"type": "string", "format": "date-time"}),
                "limit": _nullable(
                    {"type": "integer", "minimum": 1, "maximum": settings.max_records}
                ),
                "compression": _nullable({"type": "string", "enum": compressions}),
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
                "compression": _nullable({"type": "string", "enum": compressions}),
                "filters": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["target_id", "network", "from", "to"],
                    "properties": {
                        "target_id": _nullable({"type": "string"}),
                        "network": _nullable({"type": "string"}),
                        "from": _nullable(TIME),
                        "to": _nullable(TIME),
                    },
                },
                "limit": _nullable({"type": "integer", "minimum": 1}),
                "status": {"type": "string", "enum": [s.value for s in JobStatus]},
                "queue_position": _nullable({"type": "integer", "minimum": 1}),
                "attempts": {"type": "integer", "minimum": 0},
                "rows": {"type": "integer", "minimum": 0},
                "bytes": _nullable({"type": "integer", "minimum": 0}),
                "sha256": _nullable({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
                "truncated": {"type": "boolean"},
                "error": _nullable({"type": "string"}),
                "created_at": TIME,
                "started_at": _nullable(TIME),
                "finished_at": _nullable(TIME),
                "expires_at": _nullable(TIME),
                "download_url": _nullable(
                    {"type": "string", "pattern": "^/v1/export/jobs/[0-9a-f]{32}/download$"}
                ),
            },
        },
        "JobList": {
            "type": "object",
            "additionalProperties": False,
            "required": ["jobs", "next_cursor"],
            "properties": {
                "jobs": {"type": "array", "items": _ref("Job"), "maxItems": LIST_MAX},
                "next_cursor": _nullable({"type": "string", "minLength": 1}),
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
            "properties": {"events": {"type": "array", "items": _ref("Event")}},
        },
    }


_JOB_ID_PARAM = {"name": "job_id", "in": "path", "required": True, "schema": JOB_ID}


def _paths(datasets: list[str]) -> dict[str, Any]:
    job_id = _JOB_ID_PARAM
    job = _json("The job document", _ref("Job"))
    file_content = {t: {"schema": {"type": "string"}} for t in FILE_TYPES}
    file_headers = {
        "Content-Disposition": {
            "required": True,
            "description": 'attachment; filename="{dataset}-{job_id}.{ext}"',
            "schema": {"type": "string"},
        },
        "Content-Length": {"required": True, "schema": {"type": "integer", "minimum": 0}},
        "ETag": {
            "required": True,
            "description": "The file's sha256 (the job's `sha256`), quoted",
            "schema": {"type": "string"},
        },
        "Accept-Ranges": {"required": True, "schema": {"type": "string", "enum": ["bytes"]}},
    }
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness check",
                "description": "503 while a backend this node needs is out of reach: the node "
                "still answers the reads it can and recovers by itself when the backend returns.",
                "security": [],
                "responses": {
                    "200": _json(
                        "The server is up",
                        {
                            "type": "object",
                            "required": ["status"],
                            "additionalProperties": False,
                            "properties": {"status": {"const": "ok"}},
                        },
                    ),
                    "503": _json(
                        "Degraded: a backend is out of reach; `down` says which and why",
                        {
                            "type": "object",
                            "required": ["status", "down"],
                            "additionalProperties": False,
                            "properties": {
                                "status": {"const": "degraded"},
                                "down": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                    ),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json("The OpenAPI document", {"type": "object"})},
            }
        },
        "/v1/export/dataset": {
            "description": "Only POST: any other method (GET included: this is not a wallet) "
            "is answered 405 with `Allow: POST`.",
            "get": {
                "operationId": "datasetIsNotAWallet",
                "summary": "Not a wallet: GET here is refused (405) rather than exported",
                "responses": {
                    "405": _json(
                        "Only POST is allowed here",
                        _ref("Error"),
                        headers={
                            "Allow": {
                                "required": True,
                                "schema": {"type": "string", "const": "POST"},
                            }
                        },
                    ),
                    **_errors(401),
                },
            },
            "post": {
                "operationId": "createJob",
                "summary": "Ask for an export; the job runs asynchronously",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Same key and equal body from the same tenant return "
                        "the first job (200); a different body is 409.",
                        "schema": {"type": "string", "pattern": "^[!-~]([ -~]{0,253}[!-~])?$"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ExportRequest")}},
                },
                "responses": {
                    "202": _json(
                        "Job accepted",
                        _ref("Job"),
                        headers={
                            "Location": {
                                "required": True,
                                "schema": {
                                    "type": "string",
                                    "pattern": "^/v1/export/jobs/[0-9a-f]{32}$",
                                },
                            }
                        },
                    ),
                    "200": _json("The job first created with this Idempotency-Key", _ref("Job")),
                    **_errors(400, 401, 409, 413, 429, 503),
                },
            },
        },
        "/v1/export/jobs": {
            "get": {
                "operationId": "listJobs",
                "summary": "The tenant's jobs, newest first",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": [s.value for s in JobStatus]},
                    },
                    {
                        "name": "dataset",
                        "in": "query",
                        "schema": {"type": "string", "enum": datasets},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": LIST_MAX,
                            "default": DEFAULT_PAGE,
                        },
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": "The previous page's next_cursor (opaque; a value "
                        "this server did not issue is 400)",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,200}$"},
                    },
                ],
                "responses": {
                    "200": _json("One page of jobs", _ref("JobList")),
                    **_errors(400, 401, 503),
                },
            }
        },
        "/v1/export/jobs/{job_id}": {
            "parameters": [job_id],
            "get": {
                "operationId": "getJob",
                "summary": "The job document",
                "responses": {"200": job, **_errors(401, 404, 503)},
            },
            "delete": {
                "operationId": "cancelJob",
                "summary": "Cancel a queued or running job",
                "responses": {
                    "200": _json("The cancelled job", _ref("Job")),
                    **_errors(401, 404, 409, 503),
                },
            },
        },
        "/v1/export/jobs/{job_id}/download": {
            "parameters": [job_id],
            "get": {
                "operationId": "downloadJob",
                "summary": "The completed job's file, streamed; Range requests honoured",
                "parameters": [
                    {
                        "name": "Range",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file",
                        "headers": file_headers,
                        "content": file_content,
                    },
                    "206": {
                        "description": "The requested byte range of the file",
                        "headers": {
                            **file_headers,
                            "Content-Range": {"required": True, "schema": {"type": "string"}},
                        },
                        "content": file_content,
                    },
                    "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                    **_errors(401, 404, 409, 410, 412, 416, 503),
                },
            },
        },
        "/v1/export/jobs/{job_id}/events": {
            "parameters": [job_id],
            "get": {
                "operationId": "jobEvents",
                "summary": "The job's history from the event log",
                "responses": {
                    "200": _json("The job's events in order", _ref("EventList")),
                    **_errors(401, 404, 503),
                },
            },
        },
        "/v1/export/{wallet}": {
            "get": {
                "operationId": "walletExport",
                "summary": "Legacy synchronous export of a wallet's token transfers",
                "description": "Token transfers whose from_address or to_address is the wallet "
                "(matched case-insensitively), at most max_records rows, streamed.",
                "parameters": [
                    {
                        "name": "wallet",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
                    },
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The rows, streamed",
                        "content": {t: {"schema": {"type": "string"}} for t in FILE_TYPES[:2]},
                    },
                    **_errors(400, 401, 503),
                },
            }
        },
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    from .openapi_webhooks import webhook_paths, webhook_schemas  # it builds on this module

    datasets = sorted(DATASETS)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "silverexport",
            "version": "1",
            "description": "Asynchronous, event-sourced exports of Silver datasets.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**_schemas(settings, datasets), **webhook_schemas()},
        },
        "security": [{"bearer": []}],
        "paths": _with_refusals(
            {
                **_paths(datasets),
                **live_paths(settings, _JOB_ID_PARAM, _errors),
                **webhook_paths(),
            }
        ),
    }


# What any route answers to a request the server refuses before routing it (silverexport.http.
# server): so every operation lists them, including ones added later.
_REFUSALS = {
    "400": "The request line is over the server's limit, or the request is not valid HTTP",
    "431": "A request header is over the server's limit, or there are too many headers",
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _with_refusals(paths: dict[str, Any]) -> dict[str, Any]:
    for item in paths.values():
        for method, operation in item.items():
            if method in _METHODS:
                responses = operation["responses"]
                for status, reason in _REFUSALS.items():
                    responses.setdefault(status, _json(reason, _ref("Error")))
    return paths
