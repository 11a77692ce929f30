"""What /metrics costs: the request-counting middleware, on against off, in the same run.

    .venv/bin/python bench/metrics_cost.py [--seconds 4] [--rounds 3] [--connections 32]

1. The middleware's own work per request (`Metrics.observe_request`: a counter and a
   histogram child), timed in a loop.
2. `GET /v1/export/jobs/{id}` served by the real app with SILVEREXPORT_METRICS=on and =off,
   each in its own process, rounds interleaved: requests/s and the server's CPU time per
   request (psutil), which does not depend on how fast the load generator is.
3. One scrape of /metrics (what a Prometheus server asks every 15 s or so).
Target: metrics on costs at most 10% of the server CPU per request of metrics off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

KEY = "bench-key"
CPU_TARGET = 1.10
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def micro(calls: int = 200_000) -> float:
    """Nanoseconds per observe_request call (one route, method and status: the hot case)."""
    from silverexport.metrics import Metrics

    metrics = Metrics()
    route = "/v1/export/jobs/{job_id}"
    start = time.perf_counter()
    for _ in range(calls):
        metrics.observe_request(route, "GET", 200, 0.0004)
    return (time.perf_counter() - start) / calls * 1e9


def serve(data_dir: str, job_id_file: str) -> None:
    """Child process: a system with one completed job, served until killed."""
    from aiohttp import web

    from silverexport import ExportRequest, ExportSystem, make_app

    async def run(system) -> None:
        runner = web.AppRunner(make_app(system), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        print(f"http://{host}:{port}", flush=True)
        await asyncio.Event().wait()

    with ExportSystem.open(data_dir, api_keys=f"bench:{KEY}") as system:
        system.store.ingest("positions", [])
        job = system.submit(ExportRequest(dataset="positions", format="csv"), tenant="bench")
        system.wait(job.job_id, timeout=60)
        Path(job_id_file).write_text(job.job_id)
        asyncio.run(run(system))


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the same GET again as soon as a reply is whole."""

    def __init__(self, request: bytes, until: float, counts: dict, closed) -> None:
        self.request, self.until, self.counts, self.closed = request, until, counts, closed

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        if time.perf_counter() >= self.until:
            self.transport.close()
            return
        self.buffer, self.need = bytearray(), 0
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.need:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if self.buffer[9:12] != b"200":
                self.counts["errors"] += 1
            self.need = end + 4 + int(_LENGTH.search(self.buffer, 0, end + 2).group(1))
        if len(self.buffer) >= self.need:
            self.counts["requests"] += 1
            self._send()

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def load(url: str, path: str, connections: int, seconds: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    counts = {"requests": 0, "errors": 0}
    started = time.perf_counter()
    closed = [loop.create_future() for _ in range(connections)]
    for done in closed:
        await loop.create_connection(
            lambda done=done: _Connection(request, started + seconds, counts, done),
            host,
            int(port),
        )
    await asyncio.gather(*closed)
    counts["seconds"] = time.perf_counter() - started
    return counts


class Server:
    def __init__(self, metrics: str, folder: Path) -> None:
        data_dir, id_file = folder / f"data-{metrics}", folder / f"job-{metrics}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SILVEREXPORT_")}
        env["SILVEREXPORT_METRICS"] = metrics
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data_dir), str(id_file)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        self.path = f"/v1/export/jobs/{id_file.read_text()}"
        self.process = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    print(f"cores: {os.cpu_count()}")
    print(f"observe_request: {micro():.0f} ns per request (counter + histogram child)")
    with tempfile.TemporaryDirectory() as tmp:
        servers = {m: Server(m, Path(tmp)) for m in ("on", "off")}
        try:
            results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
            asyncio.run(load(servers["on"].url, servers["on"].path, 4, 0.5))  # warm up
            asyncio.run(load(servers["off"].url, servers["off"].path, 4, 0.5))
            for _ in range(args.rounds):
                for name, server in servers.items():
                    cpu = server.cpu()
                    counts = asyncio.run(
                        load(server.url, server.path, args.connections, args.seconds)
                    )
                    assert counts["errors"] == 0, counts
                    per_request = (server.cpu() - cpu) / counts["requests"] * 1e6
                    results[name].append((counts["requests"] / counts["seconds"], per_request))
            start = time.perf_counter()
            with urllib.request.urlopen(servers["on"].url + "/metrics") as resp:
                size = len(resp.read())
            scrape_ms = (time.perf_counter() - start) * 1000
        finally:
            for server in servers.values():
                server.close()
    for name in ("off", "on"):
        rps = [r for r, _ in results[name]]
        cpu = [c for _, c in results[name]]
        print(
            f"metrics {name:>3}: {min(rps):,.0f}-{max(rps):,.0f} requests/s, "
            f"server CPU {min(cpu):.1f}-{max(cpu):.1f} µs per request"
        )
    best = {name: min(c for _, c in results[name]) for name in results}
    ratio = best["on"] / best["off"]
    print(f"CPU per request, on / off (best rounds): {ratio:.3f}x (target <= {CPU_TARGET}x)")
    print(f"one scrape of /metrics: {size:,} bytes in {scrape_ms:.1f} ms")
    if ratio > CPU_TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
