"""The app served from a thread of its own, for synchronous clients (Schemathesis, urllib)."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from silverexport.http.server import AppRunner


class LiveServer:
    """`with LiveServer(app) as base_url:` — a real loopback port; the loop runs elsewhere,
    so a blocking client in the test thread cannot stall the server."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.base_url = ""
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = AppRunner(self.app, access_log=None)
        try:
            self.loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            host, port = runner.addresses[0][:2]
            self.base_url = f"http://{host}:{port}"
        except BaseException as e:
            self.error = e
            return
        finally:
            self.started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def __enter__(self) -> str:
        self.thread.start()
        if not self.started.wait(30) or self.error is not None:
            raise RuntimeError("the live server did not start") from self.error
        return self.base_url

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
