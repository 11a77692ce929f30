"""GET /healthz: whether each backend this node needs answers (SPEC §8), asked cheaply.

Each backend's check (`ExportSystem.health_checks`) runs on a small pool of its own, never on
the event loop nor on the pool requests use, all at once, each given HEALTH_PROBE_SECONDS:
a backend that has not answered by then counts as down, so a load balancer hears "degraded"
promptly. The answer is kept for CACHE_SECONDS and one round of checks runs at a time, so
/healthz under load asks each backend about once a second, not once per request; a check
still hanging from an earlier round is not started again beside itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from aiohttp import hdrs, web

from ..storage.failure import masked
from .common import JSON, SYSTEM
from .errors import RETRY_AFTER_SECONDS

HEALTH_PROBE_SECONDS = 3.0
CACHE_SECONDS = 1.0
_HEALTHY = orjson.dumps({"status": "ok"})


class Health:
    """The node's last health answer and the checks that make it."""

    def __init__(
        self, checks: dict[str, Callable[[], object]], *, cache_seconds: float = CACHE_SECONDS
    ):
        self.checks = checks
        self.cache_seconds = cache_seconds
        self._pool = ThreadPoolExecutor(max(1, len(checks)), "silverexport-health")
        self._asking: dict[str, asyncio.Future[Any]] = {}  # a check still running, per part
        self._round: asyncio.Future[dict[str, str]] | None = None
        self._answer: dict[str, str] | None = None
        self._answered_at = 0.0

    async def down(self) -> dict[str, str]:
        """Each part out of reach with its one-line reason; empty when all answer."""
        if self._answer is not None and time.monotonic() - self._answered_at < self.cache_seconds:
            return self._answer
        if self._round is None or self._round.done():
            self._round = asyncio.ensure_future(self._ask_all())
        return await asyncio.shield(self._round)

    async def _ask_all(self) -> dict[str, str]:
        reasons = await asyncio.gather(*(self._ask(name) for name in self.checks))
        down = {name: why for name, why in zip(self.checks, reasons, strict=True) if why}
        self._answer, self._answered_at = down, time.monotonic()
        return down

    async def _ask(self, name: str) -> str | None:
        running = self._asking.get(name)
        if running is None or running.done():
            loop = asyncio.get_running_loop()
            running = self._asking[name] = loop.run_in_executor(self._pool, self.checks[name])
        try:
            await asyncio.wait_for(asyncio.shield(running), HEALTH_PROBE_SECONDS)
        except TimeoutError:
            return f"no answer within {HEALTH_PROBE_SECONDS:g} s"
        except Exception as e:  # any failure is a reason, and never a password
            return masked(str(e)) or type(e).__name__
        return None

    def close(self) -> None:
        # A check hanging on a silent server must not hold up the shutdown.
        self._pool.shutdown(wait=False, cancel_futures=True)


HEALTH = web.AppKey("health", Health)


async def health_ctx(app: web.Application) -> Any:
    app[HEALTH] = health = Health(app[SYSTEM].health_checks())
    yield
    health.close()


async def healthz(request: web.Request) -> web.Response:
    """200 `{"status": "ok"}`, or 503 `{"status": "degraded", "down": {part: why}}` while a
    backend is out of reach; the reasons never carry a password."""
    down = await request.app[HEALTH].down()
    if not down:
        return web.Response(body=_HEALTHY, content_type=JSON)
    return web.Response(
        status=503,
        body=orjson.dumps({"status": "degraded", "down": down}),
        content_type=JSON,
        headers={hdrs.RETRY_AFTER: str(RETRY_AFTER_SECONDS)},
    )
