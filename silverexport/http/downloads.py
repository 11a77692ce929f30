"""A job's file as a response: aiohttp's FileResponse (sendfile, Range, HEAD), sha256 ETag."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from ..model import JobView

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

        - `If-Range` holding anything but the current strong tag (a stale or weak tag, or a
          date: our files have no last-modified validator clients should rely on) means the
          client's copy is not this one: the Range is dropped and the whole file sent (200).
          aiohttp only compares dates, so the header never reaches it.
        - `bytes=-0` asks for an empty suffix, which is unsatisfiable; aiohttp reads it as the
          whole file. It is handed on as a range starting past the end, which aiohttp refuses
          with 416 and `Content-Range: bytes */<size>`, after the preconditions.
        - A Range this server cannot honour (several ranges, or malformed) is ignored and the
          whole file sent with 200, as RFC 9110 allows, rather than a bare 416.
        """
        headers = request.headers
        if hdrs.RANGE in headers or hdrs.IF_RANGE in headers:
            changed = headers.copy()
            if_range = changed.popall(hdrs.IF_RANGE, None)
            if if_range is not None and if_range != [f'"{self._sha256}"']:
                changed.popall(hdrs.RANGE, None)
            elif _EMPTY_SUFFIX.fullmatch(changed.get(hdrs.RANGE, "")):
                changed[hdrs.RANGE] = f"bytes={_PAST_ANY_END}-"
            elif hdrs.RANGE in changed and not _honoured(request.clone(headers=changed)):
                del changed[hdrs.RANGE]
            request = request.clone(headers=changed)
        return await super().prepare(request)

    def _etag_match(self, etag_value: str, etags: Any, *, weak: bool) -> bool:  # type: ignore[override]
        return web.FileResponse._etag_match(self._sha256, etags, weak=weak)


def _honoured(request: web.BaseRequest) -> bool:
    """Whether aiohttp can parse the request's Range (one range of bytes)."""
    try:
        request.http_range  # noqa: B018 - parsing is the check
    except ValueError:
        return False
    return True
