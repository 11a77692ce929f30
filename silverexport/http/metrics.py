"""GET /metrics, and what the middleware counts a request by: its route template (SPEC §10)."""

from __future__ import annotations

from aiohttp import web

from ..metrics import CONTENT_TYPE_LATEST, UNMATCHED_ROUTE
from .bridge import run_blocking
from .common import SYSTEM

# A client that went away before the answer: nginx's code for it, so it is not a 500.
CLIENT_CLOSED = 499


def route_of(request: web.Request) -> str:
    """The matched route's template (`/v1/export/jobs/{job_id}`); one fixed label otherwise."""
    resource = request.match_info.route.resource
    return UNMATCHED_ROUTE if resource is None else resource.canonical


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus text exposition; built off the loop, since collectors read the views."""
    body = await run_blocking(request, request.app[SYSTEM].metrics.exposition)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
