"""The path items of the job API (SPEC §5): health, the document itself, creating, listing,
cancelling and downloading jobs, their events and the legacy wallet export; every status
each route can answer."""

from __future__ import annotations

from typing import Any

from ..job_pages import LIST_MAX
from ..model import JobStatus
from .jobs import DEFAULT_PAGE
from .openapi_blocks import FILE_TYPES, JOB_ID_PARAM, json_response, ref
from .openapi_statuses import error_responses

# The parts /healthz may name as down (ExportSystem.health_checks).
HEALTH_PARTS = ("event_log", "silver_store", "export_storage")


def job_paths(datasets: list[str]) -> dict[str, Any]:
    job_id = JOB_ID_PARAM
    job = json_response("The job document", ref("Job"))
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
                "description": "503 while a backend this node needs is out of reach: the event "
                "log, the Silver store (when it is PostgreSQL) or the export-file store (the "
                "directory cannot be written, the bucket cannot be reached). Each is asked with "
                "a bounded wait and the answer is kept for about a second. The node still "
                "answers the reads it can and recovers by itself when the backend returns.",
                "security": [],
                "responses": {
                    "200": json_response(
                        "The server is up",
                        {
                            "type": "object",
                            "required": ["status"],
                            "additionalProperties": False,
                            "properties": {"status": {"const": "ok"}},
                        },
                    ),
                    "503": json_response(
                        "Degraded: a backend is out of reach; `down` names each part that is, "
                        "with a one-line reason (the setting, never a password)",
                        {
                            "type": "object",
                            "required": ["status", "down"],
                            "additionalProperties": False,
                            "properties": {
                                "status": {"const": "degraded"},
                                "down": {
                                    "type": "object",
                                    "minProperties": 1,
                                    "propertyNames": {"enum": list(HEALTH_PARTS)},
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                        headers={"Retry-After": {"required": True, "schema": {"type": "string"}}},
                    ),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": json_response("The OpenAPI document", {"type": "object"})},
            }
        },
        "/v1/export/dataset": {
            "description": "Only POST: any other method (GET included: this is not a wallet) "
            "is answered 405 with `Allow: POST`.",
            "get": {
                "operationId": "datasetIsNotAWallet",
                "summary": "Not a wallet: GET here is refused (405) rather than exported",
                "responses": {
                    "405": json_response(
                        "Only POST is allowed here",
                        ref("Error"),
                        headers={
                            "Allow": {
                                "required": True,
                                "schema": {"type": "string", "const": "POST"},
                            }
                        },
                    ),
                    **error_responses(401),
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
                    "content": {"application/json": {"schema": ref("ExportRequest")}},
                },
                "responses": {
                    "202": json_response(
                        "Job accepted",
                        ref("Job"),
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
                    "200": json_response(
                        "The job first created with this Idempotency-Key", ref("Job")
                    ),
                    **error_responses(400, 401, 409, 413, 429, 503),
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
                    "200": json_response("One page of jobs", ref("JobList")),
                    **error_responses(400, 401, 503),
                },
            }
        },
        "/v1/export/jobs/{job_id}": {
            "parameters": [job_id],
            "get": {
                "operationId": "getJob",
                "summary": "The job document",
                "responses": {"200": job, **error_responses(401, 404, 503)},
            },
            "delete": {
                "operationId": "cancelJob",
                "summary": "Cancel a queued or running job",
                "responses": {
                    "200": json_response("The cancelled job", ref("Job")),
                    **error_responses(401, 404, 409, 503),
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
                    **error_responses(401, 404, 409, 410, 412, 416, 503),
                },
            },
        },
        "/v1/export/jobs/{job_id}/events": {
            "parameters": [job_id],
            "get": {
                "operationId": "jobEvents",
                "summary": "The job's history from the event log",
                "responses": {
                    "200": json_response("The job's events in order", ref("EventList")),
                    **error_responses(401, 404, 503),
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
                    **error_responses(400, 401, 503),
                },
            }
        },
    }
