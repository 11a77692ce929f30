"""Webhook fixtures: a real receiver (aiohttp on 127.0.0.1) and readers of the log."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from silverexport.config import Settings
from silverexport.events.backends import open_event_log
from silverexport.events.log import EventLog
from silverexport.events.types import RecordedEvent

from ..http.conftest import ALICE, BOB, KEYS, open_system, serve, transfer_rows  # noqa: F401
from .resolver import TableResolver  # noqa: F401

WAIT = 30.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # monotonic, for ordering only


class Receiver:
    """Answers each POST with the next status of `script` (then `then`), and records it."""

    def __init__(self, script: list[int] | None = None, then: int = 200, hang: bool = False):
        self.script = list(script or [])
        self.then = then
        self.hang = hang
        self.received: list[Received] = []
        self.changed = asyncio.Condition()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self.changed:
            self.received.append(Received(dict(request.headers), body, time.monotonic()))
            self.changed.notify_all()
        if self.hang:
            await asyncio.sleep(3600)
        status = self.script.pop(0) if self.script else self.then
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def wait_for(self, count: int, timeout: float = WAIT) -> list[Received]:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: len(self.received) >= count), timeout
            )
        return list(self.received)


@pytest.fixture
async def receiver():
    made: list[Receiver] = []

    async def _make(*args, **kwargs) -> Receiver:
        r = await Receiver(*args, **kwargs).start()
        made.append(r)
        return r

    yield _make
    for r in made:
        await r.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_log(data_dir: Path) -> EventLog:
    """The log the systems on `data_dir` use (the SQLite file there, or the PostgreSQL
    database SILVEREXPORT_EVENT_LOG_URL names), on a connection of our own, as it is."""
    return open_event_log(Settings.from_env(data_dir=data_dir), create=False)


def log_events(data_dir: Path, prefix: str = "Delivery") -> list[RecordedEvent]:
    """The log's events whose type starts with `prefix`, read on a connection of our own."""
    log = open_log(data_dir)
    try:
        return [r for r in log.read() if r.type.startswith(prefix)]
    finally:
        log.close()


async def wait_events(
    data_dir: Path, type_: str, count: int = 1, timeout: float = WAIT
) -> list[RecordedEvent]:
    """Wait (off the loop) until the log holds `count` events of `type_`."""
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(log_events, data_dir)
        matching = [r for r in found if r.type == type_]
        if len(matching) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(matching)} {type_} events after {timeout} s: {found}")
        await asyncio.sleep(0.02)
