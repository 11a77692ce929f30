"""What every handler shares: the system key, JSON responses, the job id check."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from ..errors import NotFoundError, ValidationError, quoted
from ..system import ExportSystem

SYSTEM = web.AppKey("system", ExportSystem)

JSON = "application/json"
# Job ids are uuid4().hex; anything else is refused before it reaches the system or a path.
_JOB_ID = re.compile(r"[0-9a-f]{32}")


def json_response(
    document: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """orjson is several times faster than json.dumps on job documents (the hot path)."""
    return web.Response(
        body=orjson.dumps(document), status=status, headers=headers, content_type=JSON
    )


def job_id_of(request: web.Request) -> str:
    job_id = request.match_info["job_id"]
    if not _JOB_ID.fullmatch(job_id):
        raise NotFoundError("no such job: a job id is 32 lowercase hexadecimal digits")
    return job_id


def query_params(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query as a dict; an unknown or repeated parameter is refused, like unknown body keys."""
    values: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            raise ValidationError(
                f"unknown query parameter {quoted(name)}; allowed: {', '.join(allowed)}", field=name
            )
        if name in values:
            raise ValidationError(f"{quoted(name)} is given more than once", field=name)
        values[name] = value
    return values
