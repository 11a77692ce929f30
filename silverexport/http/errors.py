"""Every error rendered as SPEC §5's `{"error": {"code", "message"}}` (see middleware.py).

Our own errors map to a status by type; aiohttp's HTTP exceptions (no route, wrong method,
body too large) keep their status and headers; anything else is a bug: logged with its
traceback here, answered with a generic 500 that carries none.
"""

from __future__ import annotations

import logging

import orjson
import pykka
from aiohttp import hdrs, web

from ..errors import (
    ConcurrencyError,
    ConflictError,
    ExportStorageError,
    GoneError,
    IntegrityError,
    InternalError,
    NotFoundError,
    QueueFullError,
    SilverExportError,
    StorageError,
    ValidationError,
)
from .common import SYSTEM

log = logging.getLogger(__name__)

_STATUS_OF: tuple[tuple[type[SilverExportError], int], ...] = (
    (ValidationError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ConcurrencyError, 409),
    (GoneError, 410),
    (QueueFullError, 429),
    (StorageError, 503),
    (ExportStorageError, 503),
    (IntegrityError, 500),
)

# Codes and messages for the HTTP exceptions aiohttp raises by itself.
_HTTP_ERRORS = {
    400: ("bad_request", "the request could not be understood"),
    404: ("not_found", "there is no such route"),
    405: ("method_not_allowed", "this method is not allowed on this route"),
    413: ("payload_too_large", "the request body is too large"),
}
# A 503 is a backend out of reach for now (the event log's database stopped, a locked
# file, the export store's bucket or endpoint gone): clients are told when to try again, and
# a node recovers by itself meanwhile.
RETRY_AFTER_SECONDS = 2
# Headers of an aiohttp HTTPException that still mean something on our JSON response.
_KEPT_HEADERS = (hdrs.ALLOW,)


class HTTPError(Exception):
    """An error that only exists at the HTTP edge (auth, media type, a job not ready)."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return web.Response(status=status, body=body, headers=headers, content_type="application/json")


def status_of(error: SilverExportError) -> int:
    for kind, status in _STATUS_OF:
        if isinstance(error, kind):
            return status
    return 500


def answer_error(request: web.Request, error: Exception) -> web.Response:
    """The response for an error a handler raised; re-raised when the answer has begun."""
    if isinstance(error, ConnectionResetError):
        # The client left mid-request. Nothing went wrong here, and nobody reads the answer;
        # re-raising would have aiohttp log a traceback for every impatient client.
        return error_response(400, "incomplete_request", "the connection closed mid-request")
    if _already_sent(request):
        # A streamed response has its status line out: aiohttp logs this and drops the
        # connection, so the client sees an unfinished body rather than a second response.
        raise error
    return render(request, error)


def render(request: web.Request, error: Exception) -> web.Response:
    """The JSON error response for `error`; a 5xx is logged here, with its traceback."""
    if isinstance(error, HTTPError):
        return error_response(error.status, error.code, error.message, error.headers)
    if isinstance(error, QueueFullError):
        headers = {hdrs.RETRY_AFTER: str(error.retry_after)}
        return error_response(429, error.code, str(error), headers)
    if isinstance(error, SilverExportError) and not isinstance(error, InternalError):
        status = status_of(error)
        if status == 503:  # expected while a backend is away: one line, no traceback
            log.warning("%s %s: %s", request.method, request.path, error)
            headers = {hdrs.RETRY_AFTER: str(RETRY_AFTER_SECONDS)}
            return error_response(status, error.code, str(error), headers)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, error, exc_info=error)
        return error_response(status, error.code, str(error))
    if isinstance(error, web.HTTPException):
        return _from_aiohttp(request, error)
    if isinstance(error, pykka.Timeout | pykka.ActorDeadError):
        log.error("%s %s: the actor system did not answer: %r", request.method, request.path, error)
        return error_response(
            503,
            "unavailable",
            "the export system is busy or shutting down; please retry",
            {hdrs.RETRY_AFTER: "1"},
        )
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=error)
    return error_response(
        500, "internal_error", "the server hit an unexpected error; it has been logged"
    )


def _from_aiohttp(request: web.Request, e: web.HTTPException) -> web.Response:
    code, message = _HTTP_ERRORS.get(e.status, (_snake(e.reason), e.reason))
    if e.status == 405:
        message = f"{request.method} is not allowed here; allowed: {e.headers.get(hdrs.ALLOW)}"
    elif e.status == 413:
        message = body_too_large(request.app[SYSTEM].settings.max_body_bytes)
    headers = {k: e.headers[k] for k in _KEPT_HEADERS if k in e.headers}
    return error_response(e.status, code, message, headers)


def body_too_large(limit: int) -> str:
    return f"the request body is larger than the {limit} bytes allowed"


def _snake(reason: str) -> str:
    return "_".join(reason.lower().replace("-", " ").split()) or "error"


def _already_sent(request: web.Request) -> bool:
    """True once a streamed response has put bytes on the wire."""
    writer = request.writer
    return writer is not None and writer.output_size > 0
