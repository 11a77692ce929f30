"""HTTP benchmark: `silverexport serve`, access log on, against a bare aiohttp app, same run.

    .venv/bin/python bench/http_serve.py [--seconds 5] [--rounds 3] [--connections 64]
        [--rows 100000] [--client wrk|asyncio] [--warm-up 1]

1. `GET /v1/export/jobs/{id}` at 64 keep-alive connections: requests/s, p50 and p99 latency.
   Ours is the real `silverexport serve` process, as an operator runs it, with its access log
   on (one line per request to its stderr, here a file; text format, or
   SILVEREXPORT_LOG_FORMAT=json with --json-log). The reference is a bare aiohttp app with no
   access log, returning a JSON document of the same size from a dict.
2. Download throughput of a completed job's file against a bare `FileResponse` of that file.

The load generator is `wrk` (2 threads) when it is installed, else a lean asyncio client in a
process of its own; the report says which. Targets: >= 0.5x the bare requests/s (aim 0.7x),
p99 <= 2x the bare p99, downloads >= 0.8x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchkit import (
    KEY,
    ROOT,
    clean_env,
    keepalive_load,
    machine,
    make_parser,
    serve_forever,
    start_child,
    stop,
)

REQS_TARGET, P99_TARGET, DOWNLOAD_TARGET = 0.5, 2.0, 0.8
WRK = shutil.which("wrk")
DOWNLOAD_CONNECTIONS = 4


# -- the two servers: `serve` itself, and the bare app (a `--serve` child process) ---------


def start_serve(data_dir: Path, log_path: Path, log_format: str) -> tuple[subprocess.Popen, str]:
    """`python -m silverexport serve` on a free port, its stderr (the log) into `log_path`."""
    env = clean_env(api_keys=f"bench:{KEY}", log_format=log_format)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "silverexport", "serve", "--port", "0", "--data-dir", data_dir],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    for line in proc.stdout:
        if match := re.search(r"serving on (http://\S+)", line):
            return proc, match.group(1)
    raise RuntimeError(f"serve did not start: {log_path.read_text()}")


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
    asyncio.run(serve_forever(app))


# -- the load generator (a `--load ...` child process) ------------------------------------


def load(
    server: subprocess.Popen, url: str, path: str, connections: int, args: argparse.Namespace
) -> dict:
    """Run the load generator (after a warm-up, one second unless told) and return its
    figures, with the server's CPU time per request: on a small machine the client may
    saturate first, and CPU per request still shows what the server costs."""
    import psutil

    run = _wrk if args.client == "wrk" else _python_client
    if args.warm_up > 0:
        run(url, path, connections, args.warm_up)
    cpu = psutil.Process(server.pid)
    before = sum(cpu.cpu_times()[:2])
    figures = run(url, path, connections, args.seconds)
    figures["cpu_us"] = 1e6 * (sum(cpu.cpu_times()[:2]) - before) / max(1, figures["requests"])
    return figures


def _python_client(url: str, path: str, connections: int, seconds: float) -> dict:
    args = [sys.executable, __file__, "--load", url, path, str(connections), str(seconds)]
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
_SIZES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _wrk(url: str, path: str, connections: int, seconds: float) -> dict:
    """wrk -t2, keep-alive, --latency; its text report parsed into our figures."""
    out = subprocess.run(
        [WRK, "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
         "-H", f"Authorization: Bearer {KEY}", url + path],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s*{percent}%\s+([0-9.]+)(us|ms|s|m)\s*$", out, re.M).groups()
        return float(value) * _UNITS[unit]

    requests = re.search(r"(\d+) requests in ", out).group(1)
    size, unit = re.search(r"Transfer/sec:\s+([0-9.]+)(\w+)", out).groups()
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    return {
        "requests": int(requests),
        "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "mb_s": float(size) * _SIZES[unit] / 1e6,
        "errors": errors,
    }


def best_of(servers: dict, paths: dict, connections: int, args: argparse.Namespace) -> dict:
    """Alternate the servers round by round and keep each one's median run (by req/s or MB/s):
    on a shared machine, background load then hits both sides alike."""
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, (proc, url) in servers.items():
            runs[name].append(load(proc, url, paths[name], connections, args))
    key = "rps" if connections > DOWNLOAD_CONNECTIONS else "mb_s"
    return {name: sorted(r, key=lambda f: f[key])[len(r) // 2] for name, r in runs.items()}


# -- the run ------------------------------------------------------------------------------


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
    parser = make_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per side")
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the downloaded file")
    parser.add_argument("--json-log", action="store_true", help="serve with JSON log lines")
    parser.add_argument(
        "--client",
        choices=("wrk", "asyncio"),
        default="wrk" if WRK else "asyncio",
        help="load generator (default: wrk when installed)",
    )
    parser.add_argument("--warm-up", type=float, default=1.0, help="seconds of warm-up (0: none)")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        url, path, connections, seconds = args.load
        print(json.dumps(asyncio.run(keepalive_load(url, path, int(connections), float(seconds)))))
        return 0
    if args.serve:
        serve_bare(*map(Path, args.serve))
        return 0

    if args.client == "wrk" and not WRK:
        parser.error("wrk is not installed")
    client = f"wrk -t2 ({WRK})" if args.client == "wrk" else "the asyncio client"
    if not WRK:
        client += " (install wrk to use it)"
    log_format = "json" if args.json_log else "text"
    print(f"{machine()} load generator: {client}")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        job_id, file_path, document = prepare(Path(tmp) / "data", args.rows)
        size = file_path.stat().st_size
        (Path(tmp) / "doc.json").write_bytes(document)
        servers = {
            "ours": start_serve(Path(tmp) / "data", Path(tmp) / "serve.log", log_format),
            "bare": start_child(
                [sys.executable, __file__, "--serve", str(Path(tmp) / "doc.json"), str(file_path)]
            ),
        }
        try:
            job_url = f"/v1/export/jobs/{job_id}"
            paths = {"ours": job_url, "bare": "/job"}
            status = best_of(servers, paths, args.connections, args)
            paths = {"ours": f"{job_url}/download", "bare": "/download"}
            down = best_of(servers, paths, DOWNLOAD_CONNECTIONS, args)
        finally:
            for proc, _ in servers.values():
                stop(proc)
        log = (Path(tmp) / "serve.log").read_bytes()
    print(f"job document {len(document)} bytes; downloaded file {size / 1e6:.1f} MB")
    print(
        f"serve's access log ({log_format}): {log.count(b'silverexport.access')} lines, "
        f"{len(log) / 1e6:.1f} MB written during the run"
    )
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
