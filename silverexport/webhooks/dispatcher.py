"""Dispatcher: one thread running an asyncio loop that makes the HTTP deliveries.

No thread per delivery: at most `webhook_max_concurrent` POSTs are in flight at once, each
bounded by `webhook_timeout_seconds`, so a slow or hanging receiver holds one slot of one
loop and nothing else; the supervisor and the exports never wait on it. Bookkeeping (the
ledger, the log) runs on the service's database thread, handed over with run_in_executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from ..config import Settings
from ..errors import StorageError, ValidationError
from .connecting import CheckedResolver
from .ledger import Claimed, DeliveryLedger, Outcome
from .signing import signature_header
from .targets import Resolver, TargetPolicy, TargetRefused, literal_address

log = logging.getLogger(__name__)
T = TypeVar("T")
USER_AGENT = "silverexport-webhooks/1"


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        ledger: Callable[[], DeliveryLedger],
        db: Executor,
        *,
        policy: TargetPolicy,
        resolver: Resolver,
    ):
        self.settings = settings
        self._ledger_factory = ledger
        self.ledger: DeliveryLedger | None = None
        self.db = db
        self.policy = policy
        self.resolver = resolver
        self.interval = max(0.01, settings.catch_up_interval_seconds)
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, name="silverexport-webhooks", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.wake: asyncio.Event | None = None
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self.unreachable = False

    def start(self) -> None:
        self.thread.start()
        self.started.wait(30)

    def stop(self) -> None:
        if self.loop is not None and self.stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=self.settings.webhook_timeout_seconds + 30)

    def nudge(self) -> None:
        """Look at the log now rather than at the next interval (a webhook was registered)."""
        if self.loop is not None and self.wake is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.wake.set)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("the webhook dispatcher stopped")

    async def _in_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping, self.wake = asyncio.Event(), asyncio.Event()
        self.started.set()
        connector = aiohttp.TCPConnector(
            resolver=CheckedResolver(self.policy, self.resolver),
            use_dns_cache=False,  # every attempt checks what the name resolves to now
            limit=self.settings.webhook_max_concurrent,
            force_close=True,
        )
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
        ) as session:
            try:
                self.ledger = await self._in_db(self._ledger_factory)
                await self._in_db(self.ledger.load)
                while not self.stopping.is_set():
                    next_due = await self._step(session)
                    await self._sleep(next_due)
            finally:
                await self._shut_down()

    async def _step(self, session: aiohttp.ClientSession) -> float | None:
        assert self.ledger is not None
        free = self.settings.webhook_max_concurrent - len(self.inflight)
        try:
            busy = frozenset(self.inflight)
            claims, next_due = await self._in_db(self.ledger.step, free, busy)
        except StorageError as e:  # the log out of reach: one line per outage, not per step
            if not self.unreachable:
                log.warning("webhook deliveries wait: the event log is out of reach: %s", e)
            self.unreachable = True
            return time.time() + self.interval
        except Exception:
            log.exception("webhook deliveries: could not read or append the log; will retry")
            return time.time() + self.interval
        if self.unreachable:
            log.warning("webhook deliveries resume: the event log answers again")
            self.unreachable = False
        for claim in claims:
            did = claim.delivery.delivery_id
            task = asyncio.create_task(self._deliver(session, claim))
            self.inflight[did] = task
            task.add_done_callback(lambda _, did=did: self._done(did))
        if len(self.inflight) >= self.settings.webhook_max_concurrent and next_due != 0.0:
            return None  # all slots busy: what is due waits for one to free (which wakes us)
        return next_due

    def _done(self, did: str) -> None:
        self.inflight.pop(did, None)
        if self.wake is not None:
            self.wake.set()  # a slot is free, and an outcome may have changed what is due

    async def _sleep(self, next_due: float | None) -> None:
        assert self.wake is not None and self.stopping is not None
        wait = self.interval if next_due is None else min(self.interval, next_due - time.time())
        if wait > 0:
            waiters = [asyncio.ensure_future(e.wait()) for e in (self.wake, self.stopping)]
            _, undone = await asyncio.wait(
                waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in undone:
                waiter.cancel()
        self.wake.clear()

    async def _deliver(self, session: aiohttp.ClientSession, claim: Claimed) -> None:
        assert self.ledger is not None
        outcome = await self._post(session, claim)
        try:
            await self._in_db(self.ledger.record, claim.delivery.delivery_id, outcome)
        except Exception:
            log.exception("delivery %s: could not record its outcome", claim.delivery.delivery_id)

    async def _post(self, session: aiohttp.ClientSession, claim: Claimed) -> Outcome:
        """One attempt: check the target again, POST the same body, judge the answer."""
        delivery = claim.delivery
        body = delivery.body.encode()
        try:
            url = URL(claim.url)
            host = url.raw_host or ""
            literal = literal_address(host)
            if literal is not None:  # aiohttp connects to a literal without resolving it
                why = self.policy.refusal(host, [str(literal)])
                if why is not None:
                    raise TargetRefused(why)
            headers = {
                "Content-Type": "application/json",
                "Silverexport-Delivery": delivery.delivery_id,
                "Silverexport-Signature": signature_header(claim.secret, body),
            }
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                status = r.status
        except TargetRefused as e:
            return Outcome(ok=False, error=f"refused: {e}", refused=True)
        except TimeoutError:
            limit = self.settings.webhook_timeout_seconds
            return Outcome(ok=False, error=f"no answer within {limit:g} s")
        except (aiohttp.ClientError, OSError, ValidationError, ValueError) as e:
            if isinstance(e.__cause__, TargetRefused):
                return Outcome(ok=False, error=f"refused: {e.__cause__}", refused=True)
            return Outcome(ok=False, error=f"{type(e).__name__}: {e}")
        if 200 <= status < 300:
            return Outcome(ok=True, status=status)
        return Outcome(ok=False, status=status, error=f"answered {status}")

    async def _shut_down(self) -> None:
        """Stop in-flight attempts and hand them back, so another process retries at once."""
        tasks = list(self.inflight.items())
        for _, task in tasks:
            task.cancel()
        for did, task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if self.ledger is not None:
                with contextlib.suppress(Exception):
                    await self._in_db(self.ledger.abandon, did)
        if self.ledger is not None:
            with contextlib.suppress(Exception):
                await self._in_db(self.ledger.save_position, True)
