"""The OpenAPI 3.1 document of SPEC §5, built per app so that its limits are the server's own.

Outside fuzzers hold the server to this document: every status a route can answer is listed,
and tests validate real responses against these schemas. This module assembles the parts
(schemas, paths, statuses, the live and webhook routes), each kept in its own module.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..silver.catalog import DATASETS
from .openapi_blocks import JOB_ID_PARAM
from .openapi_live import live_paths
from .openapi_paths import job_paths
from .openapi_schemas import job_schemas
from .openapi_statuses import error_responses, with_refusals
from .openapi_webhooks import webhook_paths, webhook_schemas


def openapi_document(settings: Settings) -> dict[str, Any]:
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
            "schemas": {**job_schemas(settings, datasets), **webhook_schemas()},
        },
        "security": [{"bearer": []}],
        "paths": with_refusals(
            {
                **job_paths(datasets),
                **live_paths(settings, JOB_ID_PARAM, error_responses),
                **webhook_paths(),
            }
        ),
    }
