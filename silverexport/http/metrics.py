"""GET /metrics and the middleware that counts every request by its route template (SPEC §10)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..metrics import CONTENT_TYPE_LATEST, UNMATCHED_ROUTE, Metrics
from .bridge import run_blocking
from .common import SYSTEM

# A client that went away before the answer: nginx's code for it, so it is not a 500.
CLIENT_CLOSED = 499


def route_of(request: web.Request) -> str:
    """The matched route's template (`/v1/export/jobs/{job_id}`); one fixed label otherwise."""
    resource = request.match_info.route.resource
    return UNMATCHED_ROUTE if resource is None else resource.canonical


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Outermost, so the status counted is the one sent, error responses included."""

    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            metrics.observe_request(
                route_of(request), request.method, status, time.perf_counter() - start
            )

    return count_requests


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus text exposition; built off the loop, since collectors read the views."""
    body = await run_blocking(request, request.app[SYSTEM].metrics.exposition)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
