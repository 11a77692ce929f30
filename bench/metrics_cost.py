"""What /metrics costs: the request-counting middleware, on against off, in the same run.

    .venv/bin/python bench/metrics_cost.py [--seconds 4] [--rounds 3] [--connections 32]
        [--calls 200000]

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
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from benchkit import (
    KEY,
    clean_env,
    keepalive_load,
    make_parser,
    serve_forever,
    start_child,
    stop,
)

CPU_TARGET = 1.10


def micro(calls: int) -> float:
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
    from silverexport import ExportRequest, ExportSystem, make_app

    with ExportSystem.open(data_dir, api_keys=f"bench:{KEY}") as system:
        system.store.ingest("positions", [])
        job = system.submit(ExportRequest(dataset="positions", format="csv"), tenant="bench")
        system.wait(job.job_id, timeout=60)
        Path(job_id_file).write_text(job.job_id)
        asyncio.run(serve_forever(make_app(system)))


class Server:
    def __init__(self, metrics: str, folder: Path) -> None:
        data_dir, id_file = folder / f"data-{metrics}", folder / f"job-{metrics}"
        self.proc, self.url = start_child(
            [sys.executable, __file__, "--serve", str(data_dir), str(id_file)],
            env=clean_env(metrics=metrics),
        )
        self.path = f"/v1/export/jobs/{id_file.read_text()}"
        self.process = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def close(self) -> None:
        stop(self.proc)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--calls", type=int, default=200_000, help="observe_request calls timed")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    print(f"cores: {os.cpu_count()}")
    print(f"observe_request: {micro(args.calls):.0f} ns per request (counter + histogram child)")
    with tempfile.TemporaryDirectory() as tmp:
        servers = {m: Server(m, Path(tmp)) for m in ("on", "off")}
        try:
            results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
            for server in servers.values():  # warm up
                asyncio.run(keepalive_load(server.url, server.path, 4, 0.5))
            for _ in range(args.rounds):
                for name, server in servers.items():
                    cpu = server.cpu()
                    figures = asyncio.run(
                        keepalive_load(server.url, server.path, args.connections, args.seconds)
                    )
                    assert figures["errors"] == 0, figures
                    per_request = (server.cpu() - cpu) / figures["requests"] * 1e6
                    results[name].append((figures["rps"], per_request))
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
