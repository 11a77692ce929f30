"""GET /v1/export/jobs/{job_id}/stream: a job's log events as Server-Sent Events (SPEC §9).

Open streams cost no thread. One `StreamHub` per app polls the log for new events (in the
app's bounded executor, never on the loop) and hands each to the streams of its job, so a
hundred streams cost one query per poll, not a hundred. It reads the log itself, not this
process's views, so a job that runs in another process (another node) streams too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import hdrs, web

from ..errors import StorageError, ValidationError
from ..events.types import JobCancelled, JobCompleted, JobExpired, JobFailed, RecordedEvent
from .auth import TENANT
from .bridge import EXECUTORS, run_blocking
from .common import SYSTEM, job_id_of, query_params

log = logging.getLogger(__name__)

T = TypeVar("T")

READ_BATCH = 1000  # events per poll query; a backlog is read in several, back to back
BACKLOG = 1000  # events waiting for one slow stream before it rereads the log instead
DISCONNECT_CHECK_SECONDS = 2.0  # how soon a waiting stream notices its client has gone
_SEQ = re.compile(r"[0-9]{1,18}")
HEADERS = {
    hdrs.CONTENT_TYPE: "text/event-stream",
    hdrs.CACHE_CONTROL: "no-cache",
    "X-Accel-Buffering": "no",  # a proxy in front must not hold events back
}
KEEPALIVE = b": keep-alive\n\n"


def ends_job(record: RecordedEvent) -> bool:
    """After this event the job does nothing more worth waiting for."""
    event = record.event
    if isinstance(event, JobFailed):
        return not event.will_retry
    return isinstance(event, JobCompleted | JobCancelled | JobExpired)


def message(record: RecordedEvent) -> bytes:
    """One SSE message; orjson never writes a raw newline, so `data` is one line."""
    data = orjson.dumps(record.to_document())
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (record.seq, record.type.encode(), data)


class Subscription:
    """One open stream's inbox: events of its job, in seq order, as the hub read them."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.inbox: deque[RecordedEvent] = deque()
        self.overflowed = False  # the inbox was dropped: reread the log from the last seq sent
        self.closed = False
        self._signal = asyncio.Event()

    def push(self, record: RecordedEvent) -> None:
        if len(self.inbox) >= BACKLOG:
            self.inbox.clear()
            self.overflowed = True
        else:
            self.inbox.append(record)
        self._signal.set()

    def close(self) -> None:
        self.closed = True
        self._signal.set()

    def take(self) -> list[RecordedEvent]:
        records = list(self.inbox)
        self.inbox.clear()
        self._signal.clear()
        return records

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signal.wait(), timeout)


class StreamHub:
    """The app's one watcher of the log: polls while any stream is open, idles otherwise."""

    def __init__(
        self,
        *,
        last_seq: Callable[[], int],
        events_after: Callable[[int, int], list[RecordedEvent]],
        run: Callable[[Callable[[], T]], Awaitable[T]],
        poll_seconds: float,
    ) -> None:
        self._last_seq = last_seq
        self._events_after = events_after
        self._run = run
        self.poll_seconds = poll_seconds
        self._subscribers: dict[str, set[Subscription]] = {}
        self._cursor: int | None = None  # None while idle: nothing is being watched
        self._tried = asyncio.Event()  # set after each try at taking the cursor
        self.failing: str | None = None  # why the log is out of reach, while it is
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def open_streams(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="stream-hub")

    async def close(self, *_: Any) -> None:
        """End every open stream (on shutdown, so draining handlers does not wait on them)."""
        self.closed = True
        self._tried.set()  # a subscriber waiting for the first poll returns, closed
        for subs in self._subscribers.values():
            for sub in subs:
                sub.close()
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def subscribe(self, job_id: str) -> Subscription:
        """Register a stream; returns once every event after what the log now holds will be
        handed to it, so a history read after this misses nothing (duplicates are dropped by
        seq)."""
        sub = Subscription(job_id)
        if self.closed:
            sub.close()
            return sub
        self._subscribers.setdefault(job_id, set()).add(sub)
        while self._cursor is None and not self.closed:
            # The log out of reach: a new stream is refused (503) rather than left hanging;
            # the streams already open wait, and resume from the hub's cursor.
            if self.failing is not None:
                self.unsubscribe(sub)
                raise StorageError(f"the job's events cannot be read now: {self.failing}")
            self._tried.clear()
            self._wake.set()
            await self._tried.wait()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.job_id]

    async def _watch(self) -> None:
        while not self.closed:
            if not self._subscribers:
                self._cursor = None
                self.failing = None  # the next stream tries the log afresh
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                if self._cursor is None:
                    try:
                        self._cursor = await self._run(self._last_seq)
                    finally:
                        self._tried.set()
                full = await self._poll()
                if self.failing is not None:
                    log.warning("stream hub: the event log answers again")
                    self.failing = None
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a locked or unreachable log: streams wait, the hub retries
                if self.failing is None:  # once per outage; a bug keeps its traceback
                    trace = not isinstance(e, StorageError)
                    log.warning("stream hub: reading the event log failed: %s", e, exc_info=trace)
                self.failing = " ".join(str(e).split()) or type(e).__name__
                full = False
            if not full:
                await asyncio.sleep(self.poll_seconds)

    async def _poll(self) -> bool:
        """Hand out the events after the cursor; True if there may be more right away."""
        cursor = self._cursor
        assert cursor is not None
        records = await self._run(lambda: self._events_after(cursor, READ_BATCH))
        for record in records:
            for sub in self._subscribers.get(record.stream_id, ()):
                sub.push(record)
        if records:
            self._cursor = records[-1].seq
        return len(records) >= READ_BATCH


HUB = web.AppKey("stream_hub", StreamHub)


async def stream_hub_ctx(app: web.Application) -> Any:
    """The hub lives with the app; it needs the executors, so it starts after them."""
    system = app[SYSTEM]
    loop = asyncio.get_running_loop()
    pool = app[EXECUTORS].blocking

    def run(fn: Callable[[], T]) -> Awaitable[T]:
        return loop.run_in_executor(pool, fn)

    hub = StreamHub(
        last_seq=system.last_seq,
        events_after=lambda after, limit: system.events_after(after, limit=limit),
        run=run,
        poll_seconds=system.settings.stream_poll_seconds,
    )
    app[HUB] = hub
    hub.start()
    app.on_shutdown.append(hub.close)
    yield
    await hub.close()


async def stream_job(request: web.Request) -> web.StreamResponse:
    job_id = job_id_of(request)
    after = _after(request)
    system = request.app[SYSTEM]
    hub = request.app[HUB]
    sub = await hub.subscribe(job_id)
    try:
        # The history after subscribing: the hub hands over anything appended from here on.
        history = await run_blocking(request, system.events, job_id, tenant=request[TENANT])
        return await _send(request, sub, history, after, system.settings.stream_keepalive_seconds)
    finally:
        hub.unsubscribe(sub)


async def _send(
    request: web.Request,
    sub: Subscription,
    history: list[RecordedEvent],
    after: int,
    keepalive: float,
) -> web.StreamResponse:
    response = web.StreamResponse(headers=HEADERS)
    await response.prepare(request)
    system = request.app[SYSTEM]
    last = after
    ended = False
    try:
        # A comment first: it sends the headers now, and every SSE parser skips it.
        await response.write(b": events of job %s\n\n" % sub.job_id.encode())
        pending = history
        while True:
            chunk = []
            for record in pending:
                if record.seq > last:
                    chunk.append(message(record))
                    last = record.seq
                ended = ended or ends_job(record)
            if chunk:
                await response.write(b"".join(chunk))
            if ended or sub.closed:
                break
            pending = await _next(request, sub, keepalive, response, last, system)
    except ConnectionError:  # the client went away mid-write
        return response
    except StorageError as e:
        # Rereading the log for a slow stream failed (its database out of reach): end the
        # stream cleanly; the client reconnects with Last-Event-ID and misses nothing.
        log.warning("stream of job %s ended: %s", sub.job_id, e)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def _next(
    request: web.Request,
    sub: Subscription,
    keepalive: float,
    response: web.StreamResponse,
    last: int,
    system: Any,
) -> list[RecordedEvent]:
    """Wait for the job's next events, sending a comment each `keepalive` s of silence."""
    quiet_since = time.monotonic()
    while not sub.closed:
        if sub.overflowed:  # too slow a reader: the log has what the inbox dropped
            sub.overflowed = False
            sub.take()
            job_id = sub.job_id
            return [r for r in await run_blocking(request, system.events, job_id) if r.seq > last]
        if sub.inbox:
            return sub.take()
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the stream")
        idle = time.monotonic() - quiet_since
        if idle >= keepalive:
            await response.write(KEEPALIVE)
            quiet_since = time.monotonic()
            idle = 0.0
        await sub.wait(min(keepalive - idle, DISCONNECT_CHECK_SECONDS))
    return []


def _after(request: web.Request) -> int:
    """Where the history starts: the Last-Event-ID header (a reconnecting client), else
    `?after=`, else the beginning."""
    query = query_params(request, ("after",))
    header = request.headers.get("Last-Event-ID")
    if header is not None:
        text, field = header.strip(), "Last-Event-ID"
    elif "after" in query:
        text, field = query["after"], "after"
    else:
        return 0
    if not _SEQ.fullmatch(text):
        raise ValidationError(
            f'"{field}" must be the seq of an event (a non-negative integer), got {text[:40]!r}',
            field=field,
        )
    return int(text)
