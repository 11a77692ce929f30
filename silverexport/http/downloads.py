"""A job's file as a response: aiohttp's FileResponse (sendfile, Range, HEAD), sha256 ETag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from ..model import JobView

GZIP = "application/gzip"


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
        """A Range this server cannot honour (several ranges, or malformed) is ignored and the
        whole file sent with 200, as RFC 9110 allows, rather than a bare 416."""
        if hdrs.RANGE in request.headers:
            try:
                request.http_range  # noqa: B018 - parsing is the check
            except ValueError:
                headers = request.headers.copy()
                del headers[hdrs.RANGE]
                request = request.clone(headers=headers)
        return await super().prepare(request)

    def _etag_match(self, etag_value: str, etags: Any, *, weak: bool) -> bool:  # type: ignore[override]
        return web.FileResponse._etag_match(self._sha256, etags, weak=weak)
