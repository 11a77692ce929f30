"""The runner that serves make_app(system): aiohttp's, with its parser's refusals in our shape.

aiohttp's protocol layer answers a request it cannot parse (a request line or header over the
limits, too many headers, bad syntax) by itself, before any middleware runs, in plain text
that quotes the first hundred bytes of the offending line back. SPEC §5 wants every refusal
in the JSON error shape and nothing echoed. `RequestHandler.handle_error` is the one place
those answers are made, and `web.Server.__call__` is where handlers are made, so this module
subclasses both and `AppRunner` swaps its server for ours; everything else is aiohttp's.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)
from aiohttp.web_protocol import RequestHandler

from .errors import error_response

log = logging.getLogger(__name__)

# Different on purpose: aiohttp's LineTooLong only says which limit was crossed, and that
# tells a request line (400) from a header (431).
REQUEST_LINE_BYTES = 16 * 1024
HEADER_FIELD_BYTES = 8 * 1024
MAX_HEADERS = 100

_PARSE_ERRORS: tuple[tuple[type[HttpProcessingError], str, str], ...] = (
    (BadHttpMethod, "bad_method", "the request line does not start with a valid HTTP method"),
    (InvalidURLError, "bad_target", "the request target is not a valid URL"),
    (InvalidHeader, "bad_header", "a request header is not valid HTTP"),
)


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, whose own error answers use SPEC §5's JSON shape."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:
            # A client's malformed request: one line, no traceback, none of its bytes.
            log.debug("refused a request from %s: %s", request.remote, type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started; no error response can follow")
        status, code, text = self._describe(status, exc)
        response = error_response(status, code, text)
        response.force_close()
        return response

    def _describe(self, status: int, exc: BaseException | None) -> tuple[int, str, str]:
        if isinstance(exc, LineTooLong):
            limit = _int(exc.args[1] if len(exc.args) > 1 else None)
            if limit == self.max_field_size:
                return 431, "header_too_large", f"a request header is over {limit} bytes"
            return 400, "request_line_too_long", f"the request line is over {limit} bytes"
        if isinstance(exc, HttpProcessingError) and "Too many headers" in exc.message:
            return 431, "too_many_headers", f"a request has at most {self.max_headers} headers"
        for kind, code, text in _PARSE_ERRORS:
            if isinstance(exc, kind):
                return 400, code, text
        if status < 500:
            return status, "bad_request", "the request is not valid HTTP/1.1"
        if status == 504:
            return 504, "timeout", "the request took too long to answer; please retry"
        return status, "internal_error", "the server hit an unexpected error; it has been logged"


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """web.AppRunner with this service's parser limits and JSON parser errors.

    `serve` uses it; an embedder serving make_app(system) itself can too."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", REQUEST_LINE_BYTES)
        kwargs.setdefault("max_field_size", HEADER_FIELD_BYTES)
        kwargs.setdefault("max_headers", MAX_HEADERS)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # the same server; only its handlers differ
        return server


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
