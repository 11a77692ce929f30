"""A job's file as a response: aiohttp's FileResponse (sendfile, Range, HEAD), sha256 ETag."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from ..model import JobView
from .errors import HTTPError

GZIP = "application/gzip"
_EMPTY_SUFFIX = re.compile(r"bytes=-0+", re.ASCII | re.IGNORECASE)
_PAST_ANY_END = 2**63  # no file is this long: a range starting here is unsatisfiable


def content_type(view: JobView) -> str:
    return GZIP if view.compression else view.format.content_type


class JobFileResponse(web.FileResponse):
    """FileResponse whose entity tag is the job's sha256 rather than mtime and size.

    The file of a job never changes, so its content hash is the strongest tag there is, and
    clients can check a download against the job document. aiohttp computes its own tag and
    compares conditional headers (If-None-Match, If-Match) against it, so both the tag it
    sends and the comparison are redirected to the hash.
    """

    def __init__(self, path: Path, view: JobView) -> None:
        assert view.sha256 is not None
        self._sha256 = view.sha256
        super().__init__(
            path,
            headers={
                hdrs.CONTENT_TYPE: content_type(view),
                hdrs.CONTENT_DISPOSITION: f'attachment; filename="{view.download_name}"',
            },
        )

    @property  # type: ignore[override]
    def etag(self) -> Any:
        return web.FileResponse.etag.fget(self)  # type: ignore[attr-defined]

    @etag.setter
    def etag(self, value: Any) -> None:
        web.FileResponse.etag.fset(self, self._sha256)  # type: ignore[attr-defined]

    async def prepare(self, request: web.BaseRequest) -> Any:
        """Range as RFC 9110 §13.1.5 and §14 say, where aiohttp reads it otherwise.

        The handler has already answered 412 and 416 itself (`refusal`), with the JSON error
        shape: aiohttp's own would be empty bodies under the file's headers.

        - `If-Range` holding anything but the current strong tag (a stale or weak tag, or a
          date: our files have no last-modified validator clients should rely on) means the
          client's copy is not this one: the Range is dropped and the whole file sent (200).
          aiohttp only compares dates, so the header never reaches it.
        - `bytes=-0` asks for an empty suffix, which is unsatisfiable; aiohttp reads it as the
          whole file. It is handed on as a range starting past the end, which aiohttp refuses
          (`refusal` answers it 416 with `Content-Range: bytes */<size>`).
        - A Range this server cannot honour (several ranges, or malformed) is ignored and the
          whole file sent with 200, as RFC 9110 allows, rather than a bare 416.
        """
        return await super().prepare(effective(request, self._sha256))

    def _etag_match(self, etag_value: str, etags: Any, *, weak: bool) -> bool:  # type: ignore[override]
        return web.FileResponse._etag_match(self._sha256, etags, weak=weak)


def effective(request: web.BaseRequest, sha256: str) -> web.BaseRequest:
    """The request with Range and If-Range read as `JobFileResponse.prepare` explains."""
    headers = request.headers
    if hdrs.RANGE not in headers and hdrs.IF_RANGE not in headers:
        return request
    changed = headers.copy()
    if_range = changed.popall(hdrs.IF_RANGE, None)
    if if_range is not None and if_range != [f'"{sha256}"']:
        changed.popall(hdrs.RANGE, None)
    elif _EMPTY_SUFFIX.fullmatch(changed.get(hdrs.RANGE, "")):
        changed[hdrs.RANGE] = f"bytes={_PAST_ANY_END}-"
    elif hdrs.RANGE in changed and not _honoured(request.clone(headers=changed)):
        del changed[hdrs.RANGE]
    return request.clone(headers=changed)


def refusal(request: web.BaseRequest, size: int, mtime: float, view: JobView) -> HTTPError | None:
    """The 412 or 416 aiohttp would give for this download, as our JSON error, else None.

    Decided in RFC 9110 §13.2.2's order, as aiohttp does: If-Match, If-Unmodified-Since,
    then (when neither If-None-Match nor If-Modified-Since makes it a 304) the Range.
    """
    assert view.sha256 is not None
    if (if_match := request.if_match) is not None:
        if not web.FileResponse._etag_match(view.sha256, if_match, weak=False):
            return HTTPError(412, "precondition_failed", "If-Match does not match the ETag")
    elif (since := request.if_unmodified_since) is not None and mtime > since.timestamp():
        return HTTPError(
            412, "precondition_failed", "the file was modified after If-Unmodified-Since"
        )
    if (if_none_match := request.if_none_match) is not None:
        if web.FileResponse._etag_match(view.sha256, if_none_match, weak=True):
            return None  # 304
    elif (since := request.if_modified_since) is not None and mtime <= since.timestamp():
        return None  # 304
    request = effective(request, view.sha256)  # no If-Range left: it was settled there
    try:
        start, end = request.http_range.start, request.http_range.stop
    except ValueError:  # effective() leaves no Range aiohttp cannot parse
        start = end = None
    if start is None:
        return None
    if start < 0 and end is None:  # a suffix: aiohttp's arithmetic, an empty file included
        start = max(start + size, 0)
    if start < size:
        return None
    return HTTPError(
        416,
        "range_not_satisfiable",
        f"the requested range is not satisfiable: the file is {size} bytes",
        headers={hdrs.CONTENT_RANGE: f"bytes */{size}"},
    )


def _honoured(request: web.BaseRequest) -> bool:
    """Whether aiohttp can parse the request's Range (one range of bytes)."""
    try:
        request.http_range  # noqa: B018 - parsing is the check
    except ValueError:
        return False
    return True
