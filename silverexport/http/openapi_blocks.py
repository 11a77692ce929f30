"""The small pieces every part of the OpenAPI document is built from: shared schemas, the
`$ref` and nullable wrappers and the JSON response shape, so each part writes them one way."""

from __future__ import annotations

from typing import Any

TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"}
JOB_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
FILE_TYPES = (
    "application/x-ndjson",
    "text/csv; charset=utf-8",
    "application/gzip",
    "application/vnd.apache.parquet",
)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def json_response(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


JOB_ID_PARAM = {"name": "job_id", "in": "path", "required": True, "schema": JOB_ID}
