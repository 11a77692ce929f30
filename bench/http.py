"""HTTP benchmark: our app against a bare aiohttp app, in the same run, on the same machine.

    .venv/bin/python bench/http.py [--seconds 5] [--rounds 3] [--connections 64] [--rows 100000]

1. `GET /v1/export/jobs/{id}` at 64 keep-alive connections: requests/s, p50 and p99 latency,
   against a bare aiohttp app returning a JSON document of the same size from a dict.
2. Download throughput of a completed job's file against a bare `FileResponse` of that file.

Each server runs in its own process and so does the load generator (a lean asyncio protocol
client, so that the client is not the first thing to saturate). Access logs are off on both
servers. Targets: >= 0.5x the bare requests/s, p99 <= 2x the bare p99, downloads >= 0.8x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file is called http.py: with its folder first on sys.path, `import http` (which aiohttp
# and urllib need) would import it instead of the standard library. Drop the folder; the
# third-party imports below are made inside functions, after this line has run.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REQS_TARGET, P99_TARGET, DOWNLOAD_TARGET = 0.5, 2.0, 0.8
KEY = "bench-key"
DOWNLOAD_CONNECTIONS = 4
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


# -- the two servers (each one `--serve ...` child process) -------------------------------


async def _run_app(app) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    print(f"http://{host}:{port}", flush=True)
    await asyncio.Event().wait()  # until the parent kills us


def serve_ours(data_dir: Path) -> None:
    from silverexport.http import make_app
    from silverexport.system import ExportSystem

    with ExportSystem.open(data_dir, api_keys=f"bench:{KEY}") as system:
        asyncio.run(_run_app(make_app(system)))


def serve_bare(document_path: Path, file_path: Path) -> None:
    """The ceiling: a route returning a dict as JSON, and a plain FileResponse."""
    import orjson
    from aiohttp import web

    document = orjson.loads(document_path.read_bytes())

    async def job(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(document), content_type="application/json")

    async def download(request: web.Request) -> web.FileResponse:
        return web.FileResponse(file_path)

    app = web.Application()
    app.router.add_get("/job", job)
    app.router.add_get("/download", download)
    asyncio.run(_run_app(app))


# -- the load generator (a `--load ...` child process) ------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the same GET again as soon as a reply is whole."""

    def __init__(self, request: bytes, until: float, latencies: list, totals: dict, closed):
        self.request, self.until = request, until
        self.latencies, self.totals, self.closed = latencies, totals, closed

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        if time.perf_counter() >= self.until:
            self.transport.close()
            return
        self.head, self.need, self.got = bytearray(), 0, 0
        self.started = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.need:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if self.head[9:12] not in (b"200", b"206"):
                self.totals["errors"] += 1
            self.need = end + 4 + int(_LENGTH.search(self.head, 0, end + 2).group(1))
            self.got = len(self.head)
        else:
            self.got += len(data)
        if self.got >= self.need:
            self.latencies.append(time.perf_counter() - self.started)
            self.totals["bytes"] += self.need
            self._send()

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _load(url: str, path: str, connections: int, seconds: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    totals = {"bytes": 0, "errors": 0}
    started = time.perf_counter()
    until = started + seconds
    closed = [loop.create_future() for _ in range(connections)]
    for done in closed:
        await loop.create_connection(
            lambda done=done: _Connection(request, until, latencies, totals, done), host, int(port)
        )
    await asyncio.gather(*closed)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "mb_s": totals["bytes"] / elapsed / 1e6,
        "errors": totals["errors"],
    }


def load(server: subprocess.Popen, url: str, path: str, connections: int, seconds: float) -> dict:
    """Run the load generator in a child process (after a warm-up) and return its figures,
    with the server's CPU time per request: on a small machine the client may saturate first,
    and CPU per request still shows what the server costs."""
    import psutil

    args = [sys.executable, __file__, "--load", url, path, str(connections)]
    subprocess.run([*args, "1"], check=True, capture_output=True)
    cpu = psutil.Process(server.pid)
    before = sum(cpu.cpu_times()[:2])
    out = subprocess.run([*args, str(seconds)], check=True, capture_output=True, text=True)
    figures = json.loads(out.stdout)
    figures["cpu_us"] = 1e6 * (sum(cpu.cpu_times()[:2]) - before) / max(1, figures["requests"])
    return figures


def best_of(rounds: int, servers: dict, paths: dict, connections: int, seconds: float) -> dict:
    """Alternate the servers round by round and keep each one's median run (by req/s or MB/s):
    on a shared machine, background load then hits both sides alike."""
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, (proc, url) in servers.items():
            runs[name].append(load(proc, url, paths[name], connections, seconds))
    key = "rps" if connections > DOWNLOAD_CONNECTIONS else "mb_s"
    return {name: sorted(r, key=lambda f: f[key])[len(r) // 2] for name, r in runs.items()}


# -- the run ------------------------------------------------------------------------------


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def prepare(data_dir: Path, rows: int) -> tuple[str, Path, bytes]:
    """A completed token_transfers job: its id, its file, and its job document."""
    from silverexport import ExportRequest
    from silverexport.silver.demo import rows_for
    from silverexport.system import ExportSystem

    with ExportSystem.open(data_dir, api_keys=f"bench:{KEY}", max_records=rows) as system:
        system.store.ingest("token_transfers", rows_for("token_transfers", rows, 7))
        job = system.submit(ExportRequest("token_transfers", "jsonl"), tenant="bench")
        done = system.wait(job.job_id, timeout=600)
        document = json.dumps(done.to_document()).encode()
        return done.job_id, system.file_path(done), document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per side")
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the downloaded file")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        url, path, connections, seconds = args.load
        print(json.dumps(asyncio.run(_load(url, path, int(connections), float(seconds)))))
        return 0
    if args.serve:
        role, *paths = args.serve
        serve_ours(Path(paths[0])) if role == "ours" else serve_bare(*map(Path, paths))
        return 0

    print(f"cpu_count={os.cpu_count()} python={sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        job_id, file_path, document = prepare(Path(tmp) / "data", args.rows)
        size = file_path.stat().st_size
        (Path(tmp) / "doc.json").write_bytes(document)
        servers = {
            "ours": _start("--serve", "ours", str(Path(tmp) / "data")),
            "bare": _start("--serve", "bare", str(Path(tmp) / "doc.json"), str(file_path)),
        }
        try:
            r, n, s = args.rounds, args.connections, args.seconds
            job_url = f"/v1/export/jobs/{job_id}"
            status = best_of(r, servers, {"ours": job_url, "bare": "/job"}, n, s)
            down = best_of(
                r,
                servers,
                {"ours": f"{job_url}/download", "bare": "/download"},
                DOWNLOAD_CONNECTIONS,
                s,
            )
        finally:
            for proc, _ in servers.values():
                proc.kill()
                proc.wait()
    print(f"job document {len(document)} bytes; downloaded file {size / 1e6:.1f} MB")
    return report(status, down)


def report(status: dict, down: dict) -> int:
    for name, r in status.items():
        print(
            f"GET job, {name}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
            f"p99 {r['p99_ms']:.2f} ms, server CPU {r['cpu_us']:.0f} us/request, "
            f"{r['errors']} errors"
        )
    for name, r in down.items():
        print(
            f"download, {name}: {r['mb_s']:,.0f} MB/s ({r['requests']} files), {r['errors']} errors"
        )
    rps = status["ours"]["rps"] / status["bare"]["rps"]
    p99 = status["ours"]["p99_ms"] / status["bare"]["p99_ms"]
    mbs = down["ours"]["mb_s"] / down["bare"]["mb_s"]
    cpu = status["ours"]["cpu_us"] / status["bare"]["cpu_us"]
    errors = sum(r["errors"] for r in (*status.values(), *down.values()))
    ok = rps >= REQS_TARGET and p99 <= P99_TARGET and mbs >= DOWNLOAD_TARGET and not errors
    print(
        f"req/s {rps:.2f}x (target >= {REQS_TARGET}x), p99 {p99:.2f}x (target <= "
        f"{P99_TARGET}x), server CPU per request {cpu:.2f}x, download {mbs:.2f}x "
        f"(target >= {DOWNLOAD_TARGET}x): "
        f"{'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
