"""The OpenAPI path items of the live and operations routes: the job stream (SPEC §9),
/metrics and the dashboard (SPEC §10). Kept apart so the main document stays readable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..metrics import CONTENT_TYPE_LATEST
from .dashboard import ASSET_TYPES, INDEX

ASSET_FILE_TYPES = sorted(set(ASSET_TYPES.values()))
SEQ = {"type": "string", "pattern": "^[0-9]{1,18}$"}


def live_paths(
    settings: Settings, job_id: dict[str, Any], errors: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """`job_id` is the document's path parameter; `errors(*statuses)` its error responses."""
    paths: dict[str, Any] = {
        "/v1/export/jobs/{job_id}/stream": {
            "parameters": [job_id],
            "get": {
                "operationId": "streamJob",
                "summary": "The job's events as Server-Sent Events, live until it ends",
                "description": "One message per event of the job in the log (`id: <seq>`, "
                "`event: <type>`, `data: <the event document as in /events>`): first the "
                "history after Last-Event-ID (or `after`, else from the start), then each new "
                "event as it is appended; the stream closes once the job is completed, failed, "
                "cancelled or expired. A comment line is sent at least every "
                f"{settings.stream_keepalive_seconds:g} s while nothing happens.",
                "parameters": [
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "Resume after this seq (a reconnecting client's header)",
                        "schema": SEQ,
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "Resume after this seq (when no Last-Event-ID is sent)",
                        "schema": SEQ,
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **errors(400, 401, 404, 503),
                },
            },
        },
        "/ui": {
            "get": {
                "operationId": "dashboardRedirect",
                "summary": "Redirects to the dashboard at /ui/",
                "security": [],
                "responses": {
                    "308": {
                        "description": "The dashboard is at /ui/",
                        "headers": {
                            "Location": {
                                "required": True,
                                "schema": {"type": "string", "const": "/ui/"},
                            }
                        },
                    }
                },
            }
        },
        "/ui/": {
            "get": {
                "operationId": "dashboard",
                "summary": "The dashboard page (it asks for an API key and calls this API)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The page",
                        "content": {ASSET_TYPES[INDEX]: {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/ui/{asset}": {
            "get": {
                "operationId": "dashboardAsset",
                "summary": "A file of the dashboard page",
                "security": [],
                "parameters": [
                    {
                        "name": "asset",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": sorted(ASSET_TYPES)},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {t: {"schema": {"type": "string"}} for t in ASSET_FILE_TYPES},
                    },
                    "404": {
                        **errors(404)["404"],
                        "description": "The dashboard has no such file",
                    },
                },
            }
        },
    }
    if settings.metrics == "on":
        paths["/metrics"] = {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics of this node (text exposition format)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The metrics",
                        "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                    },
                    **errors(503),
                },
            }
        }
    return paths
