"""Finished jobs' documents kept encoded, so a client polling a job is not answered by
building and encoding the same document again and again.

A finished job's view is final until it expires, and every change (an expiry included) is
published as a new view object: the bytes are kept beside the view they were made from and
served only for that very object, so a view that changed, whatever changed it, is encoded
afresh. Active jobs' documents change with every progress report and are never kept.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from ..job_view_cache import RECENT_VIEWS
from ..model import JobView


class EncodedDocuments:
    """At most `size` documents, the oldest dropped first. Used on the event loop only."""

    def __init__(self, size: int = RECENT_VIEWS) -> None:
        self.size = size
        self._held: dict[str, tuple[JobView, bytes]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def of(self, view: JobView) -> bytes:
        """`view.to_document()` as JSON bytes."""
        held = self._held.get(view.job_id)
        if held is not None and held[0] is view:
            return held[1]
        body = orjson.dumps(view.to_document())
        if view.status.terminal:
            self._held.pop(view.job_id, None)
            self._held[view.job_id] = (view, body)  # the view is held: its id is not reused
            if len(self._held) > self.size:
                del self._held[next(iter(self._held))]
        return body


DOCUMENTS = web.AppKey("encoded_documents", EncodedDocuments)
