"""Handlers of the job routes: create, status, download, list, cancel, events."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson
from aiohttp import hdrs, web

from ..errors import GoneError, ValidationError
from ..job_pages import LIST_MAX
from ..model import JobStatus, JobView
from ..silver.catalog import get_dataset
from ..storage.failure import failure
from ..timeutil import now_text, parse_canonical
from ..validation import digest_of, request_from_body
from .auth import TENANT
from .bridge import run_blocking
from .common import JSON, SYSTEM, job_id_of, json_response, query_params
from .documents import DOCUMENTS
from .downloads import JobFileResponse, refusal
from .errors import HTTPError, body_too_large
from .remote_file import remote_file_response

# Printable ASCII, no spaces at either end: a key is an opaque client token, not text.
_IDEMPOTENCY_KEY = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")
_LIMIT = re.compile(r"[0-9]{1,6}")
DEFAULT_PAGE = 50
LIST_PARAMS = ("status", "dataset", "limit", "cursor")


async def create_job(request: web.Request) -> web.Response:
    system = request.app[SYSTEM]
    body = await _json_body(request, system.settings.max_body_bytes)
    key = _idempotency_key(request)
    export_request = request_from_body(body)
    submitted = await run_blocking(
        request,
        system.submit_request,
        export_request,
        tenant=request[TENANT],
        idempotency_key=key,
        digest=digest_of(body),
    )
    view = submitted.job
    headers = {hdrs.LOCATION: f"/v1/export/jobs/{view.job_id}"}
    return json_response(
        view.to_document(), status=202 if submitted.created else 200, headers=headers
    )


async def get_job(request: web.Request) -> web.Response:
    body = request.app[DOCUMENTS].of(await _view(request))
    return web.Response(body=body, content_type=JSON)


async def download(request: web.Request) -> web.StreamResponse:
    view = await _view(request)
    expired = view.status is JobStatus.EXPIRED or (
        view.status.finished and view.expires_at is not None and view.expires_at <= now_text()
    )
    if expired:  # past its retention the file is never served, even if the sweep is late
        raise GoneError(f"job {view.job_id} has expired and its file was deleted")
    if view.status is not JobStatus.COMPLETED:
        raise HTTPError(
            409,
            "not_completed",
            f"job {view.job_id} is {view.status.value}: only a completed job can be downloaded",
        )
    system = request.app[SYSTEM]
    path = system.file_path(view)  # a directory store: sendfile, as fast as it gets
    if path is not None:
        try:
            stat = _readable(path)
        except FileNotFoundError:
            stat = None
        except OSError as e:  # unreadable, its mount gone: 503, not aiohttp's empty 403
            raise failure(system.storage.url, f"read {path.name}", e) from e
        if stat is None or view.sha256 is None:
            raise _gone(view)
        if (refused := refusal(request, stat.st_size, stat.st_mtime, view)) is not None:
            raise refused
        return JobFileResponse(path, view)
    size = None
    if view.file_name is not None:
        size = await run_blocking(request, system.storage.size, view.file_name)
    if size is None or view.sha256 is None:
        raise _gone(view)
    # The object's own date is the store's; the job's finish is when it was made whole.
    mtime = parse_canonical(view.finished_at).timestamp() if view.finished_at else 0.0
    if (refused := refusal(request, size, mtime, view)) is not None:
        raise refused
    return await remote_file_response(request, system.storage, view, size, mtime)


def _readable(path: Path) -> os.stat_result:
    """The file's stat, once it has been opened for reading: sendfile's own open failing
    would be an empty 403 (or 404) from aiohttp rather than our JSON error."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _gone(view: JobView) -> GoneError:
    # Another process expired it a moment ago (this one has not read that yet).
    return GoneError(f"job {view.job_id} has expired and its file was deleted")


async def list_jobs(request: web.Request) -> web.Response:
    query = query_params(request, LIST_PARAMS)
    limit = query.get("limit")
    if limit is not None and not _LIMIT.fullmatch(limit):
        raise ValidationError(f'"limit" must be an integer between 1 and {LIST_MAX}', field="limit")
    dataset = query.get("dataset")
    if dataset is not None:
        get_dataset(dataset)  # a ValidationError listing the valid ones
    system = request.app[SYSTEM]
    views, next_cursor = await run_blocking(
        request,
        system.list,
        tenant=request[TENANT],
        status=query.get("status"),
        dataset=dataset,
        limit=DEFAULT_PAGE if limit is None else int(limit),
        cursor=query.get("cursor"),
    )
    return json_response({"jobs": [v.to_document() for v in views], "next_cursor": next_cursor})


async def cancel_job(request: web.Request) -> web.Response:
    job_id = job_id_of(request)
    system = request.app[SYSTEM]
    view = await run_blocking(request, system.cancel, job_id, tenant=request[TENANT])
    return json_response(view.to_document())


async def job_events(request: web.Request) -> web.Response:
    job_id = job_id_of(request)
    system = request.app[SYSTEM]

    def history() -> list[dict[str, Any]]:
        return [e.to_document() for e in system.events(job_id, tenant=request[TENANT])]

    return json_response({"events": await run_blocking(request, history)})


async def dataset_not_a_wallet(request: web.Request) -> web.Response:
    """GET /v1/export/dataset would otherwise reach the legacy wallet route."""
    raise web.HTTPMethodNotAllowed(request.method, ["POST"])


async def _view(request: web.Request) -> JobView:
    """The cached view answers without leaving the loop; a miss asks the system off it.

    Only held views' ids are found in memory, and those are valid: the id is checked (a 404
    for one that cannot be a job's) on a miss, before it goes anywhere else."""
    system = request.app[SYSTEM]
    tenant = request[TENANT]
    view = system.cached_status(request.match_info["job_id"], tenant=tenant)
    if view is None:
        view = await run_blocking(request, system.status, job_id_of(request), tenant=tenant)
    return view


async def _json_body(request: web.Request, max_bytes: int) -> Any:
    """The body parsed as JSON whatever its Content-Type says: `curl -d` sends JSON labelled as
    a form, and the contract answers a body that is not a JSON object with 400."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise HTTPError(413, "payload_too_large", body_too_large(max_bytes))
    raw = await request.read()  # client_max_size stops a body without a length at max_bytes
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        hint = "" if request.content_type == JSON else f" (it was sent as {request.content_type})"
        raise ValidationError(
            f"the request body is not valid JSON{hint}: {e}", field="body"
        ) from None


def _idempotency_key(request: web.Request) -> str | None:
    keys = request.headers.getall("Idempotency-Key", [])
    if not keys:
        return None
    if len(keys) > 1 or not _IDEMPOTENCY_KEY.fullmatch(keys[0]):
        raise ValidationError(
            "the Idempotency-Key header must be one value of 1 to 255 printable ASCII characters",
            field="Idempotency-Key",
        )
    return keys[0]
