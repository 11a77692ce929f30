"""The one middleware of the app: it counts the request, renders its errors, resolves its tenant.

Three jobs in one layer, on purpose: aiohttp runs each middleware as a coroutine of its own
(plus a wrapper of its own around the handler), and on `GET /v1/export/jobs/{id}` three of
them cost as much as the handler. The order of the jobs is the order the three layers had:
the count sees the status sent, error responses (a 401 included) are rendered before it.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..metrics import Metrics
from .auth import TENANT, ApiKeys, needs_auth, tenant_of
from .errors import answer_error
from .metrics import CLIENT_CLOSED, route_of


def front_middleware(keys: ApiKeys, metrics: Metrics | None) -> Middleware:
    """Handlers read the tenant as request[TENANT]; `metrics` None: nothing is counted."""

    @web.middleware
    async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = perf_counter()
        status = 500  # a response that breaks off after its status line went out
        try:
            try:
                if needs_auth(request.path):
                    request[TENANT] = tenant_of(request, keys)
                response = await handler(request)
            except web.HTTPException as e:
                if e.status < 400:  # a redirect, say: aiohttp sends it as it is
                    status = e.status
                    raise
                response = answer_error(request, e)
            except Exception as e:  # not CancelledError, a BaseException: counted below
                response = answer_error(request, e)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            if metrics is not None:
                metrics.observe_request(
                    route_of(request), request.method, status, perf_counter() - start
                )

    return front
