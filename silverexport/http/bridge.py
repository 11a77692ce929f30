"""Blocking work off the event loop, on thread pools owned by the app and bounded in size.

pykka's `Future.__await__` calls the blocking `get()`, so an actor is never awaited here:
every ask (and every SQLite read) runs in `blocking`; long streaming generators run in a
separate small pool so that a few wallet exports cannot starve status and submit calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

BLOCKING_THREADS = 8
STREAMING_THREADS = 4
STREAM_BUFFER = 8  # chunks in flight between a streaming thread and the response
_END = object()


class Executors:
    """The app's two pools; created on startup and shut down on cleanup (`cleanup_ctx`)."""

    def __init__(self) -> None:
        self._blocking: ThreadPoolExecutor | None = None
        self._streaming: ThreadPoolExecutor | None = None

    @property
    def blocking(self) -> ThreadPoolExecutor:
        if self._blocking is None:
            raise RuntimeError("the application has not started")
        return self._blocking

    @property
    def streaming(self) -> ThreadPoolExecutor:
        if self._streaming is None:
            raise RuntimeError("the application has not started")
        return self._streaming

    def start(self) -> None:
        self._blocking = ThreadPoolExecutor(BLOCKING_THREADS, "silverexport-http")
        self._streaming = ThreadPoolExecutor(STREAMING_THREADS, "silverexport-stream")

    def shutdown(self) -> None:
        for pool in (self._blocking, self._streaming):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._blocking = self._streaming = None


EXECUTORS = web.AppKey("executors", Executors)


async def executors_ctx(app: web.Application) -> AsyncIterator[None]:
    executors = app[EXECUTORS]
    executors.start()
    yield
    # In a thread: waiting for in-flight calls must not block the loop either.
    await asyncio.to_thread(executors.shutdown)


async def run_blocking(request: web.Request, fn: Callable[..., T], /, *args: Any, **kw: Any) -> T:
    """Run `fn(*args, **kw)` on the app's bounded pool and await its result."""
    loop = asyncio.get_running_loop()
    call = functools.partial(fn, *args, **kw)
    return await loop.run_in_executor(request.app[EXECUTORS].blocking, call)


async def iterate_blocking(
    request: web.Request, make: Callable[[], Iterator[bytes]]
) -> AsyncGenerator[bytes, None]:
    """Iterate a blocking generator from start to end in ONE streaming thread.

    One thread, because SQLite connections belong to the thread that opened them; chunks
    cross through a bounded queue, so a slow client slows the reader instead of filling
    memory. Closing this generator (client gone, error) stops the thread within a chunk.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(STREAM_BUFFER)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                future.result(timeout=0.5)
                return True
            except TimeoutError:
                if stop.is_set():
                    future.cancel()
                    return False

    def produce() -> None:
        outcome: object = _END
        try:
            with contextlib.closing(make()) as chunks:
                for chunk in chunks:
                    if stop.is_set() or not hand_over(chunk):
                        return
        except Exception as e:  # re-raised on the loop side, where the middleware sees it
            outcome = e
        if not stop.is_set():
            hand_over(outcome)

    loop.run_in_executor(request.app[EXECUTORS].streaming, produce)
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while not queue.empty():  # unblock a producer waiting for room
            queue.get_nowait()
