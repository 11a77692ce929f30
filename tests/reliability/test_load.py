"""Load: 16 concurrent HTTP clients submit jobs to `silverexport serve` and poll them to the
end, while a separate ingestion process embeds ExportSystem on the same data dir and writes
Silver rows inside its ingestion slots.

All jobs must complete and none may be lost; the server's threads stay bounded (sampled with
psutil) however many jobs wait in the queue; no 5xx and no "database is locked" reaches any
client, nor the ingestion process. The p99 latency of status polls is reported.

Size: SILVEREXPORT_LOAD_JOBS (default 400), 2,000 with SILVEREXPORT_SOAK=1.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import threading
import time
import urllib.request

import aiohttp
import orjson
import psutil
import pytest

from silverexport.silver.store import SilverStore
from tests.actors.conftest import transfer_rows

from .reliability_figures import record
from .serve_process import ALICE, BOB, ROOT, ServeProcess, child_env, cli, soak

JOBS = 2000 if soak() else int(os.environ.get("SILVEREXPORT_LOAD_JOBS", "400"))
CLIENTS = 16
PER_BATCH = 4  # each client submits this many, then polls them all to the end
MAX_CONCURRENT_EXPORTS = 4
DEADLINE = 120.0
# main, the event loop's helpers, supervisor, timer, 8 blocking + 4 streaming pool threads,
# one per running export, and slack for aiohttp/sqlite internals: independent of the queue.
THREAD_BOUND = 8 + 4 + MAX_CONCURRENT_EXPORTS + 12


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Load:
    def __init__(self, base: str):
        self.base = base
        self.next = 0
        self.accepted: dict[str, dict | None] = {}  # job id -> its final job document
        self.headers_of: dict[str, dict[str, str]] = {}
        self.status_latencies: list[float] = []
        self.submit_latencies: list[float] = []
        self.bad: list[str] = []
        self.requests = 0

    def check(self, what: str, status: int, body: bytes) -> None:
        self.requests += 1
        if status >= 500 or b"locked" in body.lower() or b"Traceback" in body:
            self.bad.append(f"{what}: {status} {body[:300]!r}")

    async def client(self, n: int, session: aiohttp.ClientSession) -> None:
        headers = ALICE if n % 2 == 0 else BOB
        while self.next < JOBS:
            batch = []
            while self.next < JOBS and len(batch) < PER_BATCH:
                i = self.next
                self.next += 1
                body = {
                    "dataset": "token_transfers",
                    "format": ("csv", "jsonl")[i % 2],
                    "target_id": f"t{i % 4}",
                    "limit": 500,
                }
                if i % 5 == 0:
                    body["compression"] = "gzip"
                started = time.monotonic()
                async with session.post("/v1/export/dataset", json=body, headers=headers) as resp:
                    content = await resp.read()
                self.submit_latencies.append(time.monotonic() - started)
                self.check("submit", resp.status, content)
                if resp.status == 202:
                    job_id = orjson.loads(content)["job_id"]
                    self.accepted[job_id] = None
                    self.headers_of[job_id] = headers
                    batch.append(job_id)
            for job_id in batch:
                self.accepted[job_id] = await self.poll(session, job_id, headers)

    async def poll(self, session: aiohttp.ClientSession, job_id: str, headers) -> dict:
        deadline = time.monotonic() + DEADLINE
        while True:
            started = time.monotonic()
            async with session.get(f"/v1/export/jobs/{job_id}", headers=headers) as resp:
                content = await resp.read()
            self.status_latencies.append(time.monotonic() - started)
            self.check("status", resp.status, content)
            if resp.status != 200:
                return {"job_id": job_id, "status": f"http {resp.status}"}
            job = orjson.loads(content)
            if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
                return job
            await asyncio.sleep(0.02)  # the client's polling pace

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        async with aiohttp.ClientSession(self.base, connector=connector) as session:
            await asyncio.gather(*(self.client(n, session) for n in range(CLIENTS)))


class ThreadSampler(threading.Thread):
    """num_threads of the server process, sampled until stopped."""

    def __init__(self, pid: int):
        super().__init__(name="thread-sampler", daemon=True)
        self.proc = psutil.Process(pid)
        self.stop = threading.Event()
        self.samples: list[int] = []

    def run(self) -> None:
        while True:
            try:
                self.samples.append(self.proc.num_threads())
            except psutil.Error:
                return
            if self.stop.wait(0.02):  # the sampling period
                return


@pytest.mark.timeout(1800 if soak() else 300)
def test_sixteen_clients_and_an_ingestion_process(tmp_path, request):
    data = tmp_path / "data"
    data.mkdir()
    store = SilverStore(data / "silver.db")
    try:
        for t in range(4):
            store.ingest("token_transfers", transfer_rows(500, target=f"t{t}", start=t * 500))
    finally:
        store.close()
    env = child_env(SILVEREXPORT_MAX_CONCURRENT_EXPORTS=str(MAX_CONCURRENT_EXPORTS))
    server = ServeProcess(data, tmp_path / "serve.log", env=env)
    worker = None
    sampler = None
    out = tmp_path / "ingest.json"
    try:
        base = server.wait_for_url()
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.load_ingest_worker", str(data), str(out)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(tmp_path / "ingest.log").open("wb"),
            text=True,
        )
        assert worker.stdout.readline().strip() == "READY"
        sampler = ThreadSampler(server.pid)
        sampler.start()
        load = Load(base)
        started = time.monotonic()
        asyncio.run(load.run())
        elapsed = time.monotonic() - started
        sampler.stop.set()
        sampler.join(10)
        worker.stdin.close()  # the worker's signal to finish its batch and report
        assert worker.stdout.readline().strip() == "DONE"
        assert worker.wait(timeout=60) == 0
        ingested = orjson.loads(out.read_bytes())
        unfinished, lost, checked = check_outcome(base, load)
    finally:
        if sampler is not None:
            sampler.stop.set()
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
        graceful = server.stop() if server.proc.poll() is None else server.proc.returncode
        server.close()
    log = server.log_path.read_text(errors="replace")
    verify = cli("verify", "--data-dir", str(data))
    figures = {
        "jobs": JOBS,
        "clients": CLIENTS,
        "accepted": len(load.accepted),
        "completed": sum(1 for j in load.accepted.values() if j and j["status"] == "completed"),
        "unfinished": unfinished,
        "lost": lost,
        "downloads_checked": checked,
        "requests": load.requests,
        "bad_responses": len(load.bad),
        "seconds": round(elapsed, 1),
        "jobs_per_second": round(len(load.accepted) / elapsed, 1),
        "status_p50_ms": round(percentile(load.status_latencies, 0.50) * 1000, 1),
        "status_p99_ms": round(percentile(load.status_latencies, 0.99) * 1000, 1),
        "status_max_ms": round(max(load.status_latencies) * 1000, 1),
        "submit_p99_ms": round(percentile(load.submit_latencies, 0.99) * 1000, 1),
        "threads_first": sampler.samples[0],
        "threads_peak": max(sampler.samples),
        "thread_samples": len(sampler.samples),
        "ingested_rows": ingested["rows"],
        "ingest_errors": len(ingested["errors"]),
        "ingest_slot_wait_max_ms": round(ingested["slot_waits_max_ms"], 1),
        "locked_in_server_log": log.count("database is locked"),
    }
    record(request, "load", figures, tmp_path)
    assert not load.bad, load.bad[:5]
    assert len(load.accepted) == JOBS and lost == 0 and unfinished == 0, figures
    assert figures["completed"] == JOBS, figures
    assert not ingested["errors"], ingested["errors"][:5]
    assert ingested["batches"] > 0
    assert max(sampler.samples) <= THREAD_BOUND, figures
    assert graceful == 0
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "database is locked" not in log


def check_outcome(base: str, load: Load) -> tuple[int, int, int]:
    """(unfinished, lost, downloads checked): every job is listed for its tenant and each
    listed job finished; a sample of downloads matches its job's sha256."""

    def get(path: str, headers: dict) -> bytes:
        req = urllib.request.Request(base + path, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()

    listed: dict[str, dict] = {}
    for headers in (ALICE, BOB):
        cursor = None
        while True:
            page = orjson.loads(
                get("/v1/export/jobs?limit=500" + (f"&cursor={cursor}" if cursor else ""), headers)
            )
            listed |= {j["job_id"]: j for j in page["jobs"]}
            if not (cursor := page["next_cursor"]):
                break
    lost = sum(1 for job_id in load.accepted if job_id not in listed)
    unfinished = sum(1 for j in listed.values() if j["status"] != "completed")
    checked = 0
    for job_id in sorted(load.accepted)[:50]:
        job = listed.get(job_id)
        if job and job["status"] == "completed":
            data = get(job["download_url"], load.headers_of[job_id])
            assert hashlib.sha256(data).hexdigest() == job["sha256"], job
            checked += 1
    return unfinished, lost, checked
