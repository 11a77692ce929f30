"""A job's file from a store with no local path (S3) as a response, chunk by chunk.

The same answers as the sendfile path (`downloads.JobFileResponse`): ETag = sha256,
Content-Length, Accept-Ranges, one byte range as 206 with Content-Range, 304 for a matching
If-None-Match, HEAD without a body. 412 and 416 are refused by `downloads.refusal` before
this runs, with the JSON error shape. Memory stays at one chunk whatever the file's size.
A store that fails once the headers are out gets the connection cut short of Content-Length.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from ..errors import ExportStorageError, GoneError
from ..model import JobView
from ..storage import ExportStorage, stream_range
from .downloads import content_type, effective

log = logging.getLogger(__name__)


def span(request: web.BaseRequest, size: int) -> tuple[int, int, bool]:
    """(start, count, partial) for the request as `effective` leaves it, as aiohttp reads it."""
    try:
        rng = request.http_range
        start, end = rng.start, rng.stop
    except ValueError:  # effective() leaves no Range aiohttp cannot parse
        start = end = None
    if start is None:
        return 0, size, False
    if start < 0 and end is None:  # a suffix
        start = max(start + size, 0)
        return start, size - start, True
    return start, min(end if end is not None else size, size) - start, True


async def remote_file_response(
    request: web.Request, storage: ExportStorage, view: JobView, size: int, mtime: float
) -> web.StreamResponse:
    assert view.sha256 is not None and view.file_name is not None
    response = web.StreamResponse(
        headers={
            hdrs.CONTENT_TYPE: content_type(view),
            hdrs.CONTENT_DISPOSITION: f'attachment; filename="{view.download_name}"',
            hdrs.ACCEPT_RANGES: "bytes",
        }
    )
    response.etag = view.sha256
    response.last_modified = mtime
    if (if_none_match := request.if_none_match) is not None:
        not_modified = web.FileResponse._etag_match(view.sha256, if_none_match, weak=True)
    else:
        since = request.if_modified_since
        not_modified = since is not None and mtime <= since.timestamp()
    if not_modified:
        response.set_status(304)
        del response.headers[hdrs.ACCEPT_RANGES]  # as FileResponse answers a 304
        await response.prepare(request)
        await response.write_eof()
        return response
    start, count, partial = span(effective(request, view.sha256), size)
    if partial:
        response.set_status(206)
        response.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{start + count - 1}/{size}"
    response.content_length = count
    chunks = None
    if request.method != hdrs.METH_HEAD and count > 0:
        chunks = stream_range(storage, view.file_name, start, count)
        # The first chunk before any header: a file deleted just now is a 410, not a cut, and
        # a store out of reach a 503 (ExportStorageError, rendered by the middleware).
        try:
            first = await anext(chunks)
        except (FileNotFoundError, StopAsyncIteration):
            await chunks.aclose()
            raise GoneError(f"job {view.job_id} has expired and its file was deleted") from None
    await response.prepare(request)
    if chunks is not None:
        sent = 0
        try:
            await response.write(first)
            sent += len(first)
            async for chunk in chunks:
                await response.write(chunk)
                sent += len(chunk)
        except (ExportStorageError, FileNotFoundError) as e:
            # The status line and Content-Length are out: all that is left to say is that the
            # body is unfinished, by cutting the connection short of that length. One warning,
            # no traceback: the store failed, not this code (the next request may well work).
            log.warning(
                "download of job %s cut after %d of %d bytes: %s", view.job_id, sent, count, e
            )
            cut(request)
            return response
        finally:
            await chunks.aclose()
    await response.write_eof()
    return response


def cut(request: web.BaseRequest) -> None:
    """Close the connection under a response whose body is not finished: the client sees
    fewer bytes than Content-Length (an error), never a short body that looks whole. aiohttp
    then finds the transport closed when it ends the response, and only logs the access."""
    protocol = request.protocol
    if protocol is not None:
        protocol.force_close()
