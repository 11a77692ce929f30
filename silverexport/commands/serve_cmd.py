"""`serve`: the HTTP service of SPEC §5, with graceful shutdown and an optional demo setup."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import secrets
import signal
import sys

from aiohttp import web

from .. import logs
from ..http import make_app
from ..http.auth import ApiKeys
from ..http.server import AppRunner
from ..silver.demo import generate
from ..system import ExportSystem
from .common import add_data_dir, settings_from

log = logging.getLogger("silverexport.serve")

DEMO_ROWS = 1000
DEMO_TENANT = "demo"
SHUTDOWN_GRACE_SECONDS = 30.0  # in-flight requests get this long to finish on SIGTERM


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the HTTP service",
        description="Serve the HTTP API (SPEC §5) until SIGTERM or Ctrl-C, then finish the "
        "requests in flight and stop; running exports resume on the next start.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_port, default=8080, help="TCP port (default 8080; 0 picks a free one)"
    )
    add_data_dir(serve)
    serve.add_argument(
        "--demo",
        action="store_true",
        help="fill an empty Silver store with demo data; without SILVEREXPORT_API_KEYS, "
        f"make a key for tenant {DEMO_TENANT!r} and print it with a curl example",
    )
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    handler = logs.setup(settings.log_format)
    demo_key = None
    if args.demo and not settings.api_keys:
        demo_key = (DEMO_TENANT, secrets.token_urlsafe(24))
        settings = dataclasses.replace(settings, api_keys=f"{DEMO_TENANT}:{demo_key[1]}")
    elif args.demo:
        # Keys are configured: the demo still shows one that works (the first one's).
        secret, tenant = ApiKeys.parse(settings.api_keys).entries[0]
        demo_key = (tenant, secret.decode())
    elif not settings.api_keys:
        log.warning("no SILVEREXPORT_API_KEYS: every /v1 request will be refused with 401")
    with ExportSystem.open(settings=settings) as system:
        if args.demo:
            _fill_demo(system)
        try:
            asyncio.run(_serve(system, args.host, args.port, demo_key, handler))
        except OSError as e:
            print(f"silverexport: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
            return 1
    log.info("stopped")
    return 0


def _fill_demo(system: ExportSystem) -> None:
    store = system.store
    if any(store.counts().values()):
        print("demo: the Silver store already holds data; leaving it as it is", flush=True)
        return
    with system.slots.ingestion():
        counts = generate(store, rows=DEMO_ROWS, seed=7)
    print(f"demo: wrote {sum(counts.values())} rows into {len(counts)} datasets", flush=True)


async def _serve(
    system: ExportSystem,
    host: str,
    port: int,
    demo_key: tuple[str, str] | None,
    log_handler: logging.StreamHandler,
) -> None:
    access = logs.BatchWriter(log_handler)
    runner = AppRunner(
        make_app(system),
        access_log=logging.getLogger(logs.ACCESS_LOGGER),
        access_log_class=logs.access_log_class(access, system.settings.log_format),
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
    )
    await runner.setup()
    with _Signals() as stop:
        try:
            await web.TCPSite(runner, host, port).start()
            url = _url(runner.addresses[0])
            print(
                f"silverexport: serving on {url} (data in {system.settings.data_dir})", flush=True
            )
            if demo_key is not None:
                print(_demo_banner(url, demo_key), flush=True)
            await stop.wait()
            log.info("shutting down: no new connections; finishing requests in flight")
        finally:
            await runner.cleanup()  # stop listening, drain handlers, shut the app's pools
            access.flush()


class _Signals:
    """SIGTERM and SIGINT set an event; they stay caught until the drain is over, so that a
    second signal cannot kill the process halfway through its graceful shutdown."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __enter__(self) -> asyncio.Event:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        for sig in self.SIGNALS:
            self.loop.add_signal_handler(sig, self._received, sig)
        return self.stop

    def _received(self, sig: signal.Signals) -> None:
        if self.stop.is_set():
            log.info("%s: already shutting down", sig.name)
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig in self.SIGNALS:
            self.loop.remove_signal_handler(sig)


def _url(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _demo_banner(url: str, demo_key: tuple[str, str]) -> str:
    tenant, key = demo_key
    auth = f"-H 'Authorization: Bearer {key}'"
    return "\n".join(
        [
            f"demo: API key for tenant {tenant!r}: {key}",
            "demo: try it:",
            f"  curl -s -X POST {url}/v1/export/dataset {auth} \\",
            "    -H 'Content-Type: application/json' \\",
            """    -d '{"dataset": "token_transfers", "format": "csv"}'""",
            f"  curl -s {url}/v1/export/jobs/<job_id> {auth}",
            f"  curl -s -OJ {url}/v1/export/jobs/<job_id>/download {auth}",
        ]
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return port
