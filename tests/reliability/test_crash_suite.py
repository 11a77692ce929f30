"""The crash suite: `silverexport serve` as a real process, SIGKILLed at random moments while it
accepts jobs, appends progress, writes and renames export files, and expires jobs; restarted
each time. Nothing accepted may be lost, no file may be corrupt, and the log must verify.

Each round starts the server (the restart after the previous kill), first settles and checks
everything accepted so far, then submits a new mix of jobs and kills the server in one of four
ways, chosen by a seeded RNG:

- `appends`: while a client is still submitting (requests, starts, progress in flight);
- `export`:  a random moment after a large export started;
- `rename`:  as soon as the first job of the round completes (others are finishing: file
  renames and JobCompleted appends);
- `expiry`:  a random moment after jobs finished under a retention of a fraction of a second,
  with the expiry timer running every 0.1 s (JobExpired appends and file deletions).

After every kill `silverexport verify` must exit 0 on the data dir as the crash left it.
After every restart every accepted job (every 202) must exist and reach a terminal state:
completed (its download's sha256 equal to the job's and to its ETag, its bytes identical to
the same export run without interruption), expired once its retention passed, or failed only
by the three-attempts rule (counted apart).

Size: SILVEREXPORT_CRASH_ROUNDS (default 20), SILVEREXPORT_CRASH_SEED; SILVEREXPORT_SOAK=1 runs
80 rounds on a larger store.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from silverexport.silver.store import SilverStore
from silverexport.silver.writers import Filters, export_to_file
from tests.actors.conftest import transfer_rows

from .reliability_figures import record
from .serve_process import Client, ServeProcess, child_env, cli, soak

# The checks read the export directory (partials, leftovers) as the crash left it.
pytestmark = pytest.mark.file_storage

SEED = int(os.environ.get("SILVEREXPORT_CRASH_SEED", "6061"))
ROUNDS = 80 if soak() else int(os.environ.get("SILVEREXPORT_CRASH_ROUNDS", "20"))
BIG_ROWS = 90_000 if soak() else 40_000
SMALL_ROWS = 600
MAX_RECORDS = 100_000
SETTLE = 90.0  # seconds for every accepted job to reach a terminal state after a restart
MODES = ("appends", "export", "rename", "expiry")
TERMINAL = {"completed", "failed", "cancelled", "expired"}
T0 = 1_700_000_000_000  # transfer_rows' first block_time (epoch ms)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def requests_pool() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(small, large) jobs: both formats, with and without gzip, filters and limits."""
    small: list[dict[str, Any]] = []
    large: list[dict[str, Any]] = []
    for fmt in ("csv", "jsonl"):
        for compression in (None, "gzip"):
            extra = {"compression": compression} if compression else {}
            large.append({"dataset": "token_transfers", "format": fmt, "target_id": "big", **extra})
            small.append(
                {"dataset": "token_transfers", "format": fmt, "target_id": "small", **extra}
            )
    large += [
        {"dataset": "token_transfers", "format": "csv"},  # everything (truncated in soak size)
        {"dataset": "token_transfers", "format": "jsonl", "network": "ethereum", "limit": 7000},
    ]
    small += [
        {
            "dataset": "token_transfers",
            "format": "csv",
            "from": _time(T0 + 1000 * 1000),
            "to": _time(T0 + 1000 * 1700),
        },
        {"dataset": "token_transfers", "format": "jsonl", "target_id": "small", "limit": 10},
        {"dataset": "hl_funding", "format": "csv"},  # no rows: a header only
        {"dataset": "hl_funding", "format": "jsonl", "compression": "gzip"},  # an empty gzip
    ]
    return small, large


SMALL, LARGE = requests_pool()
POOL = SMALL + LARGE


class References:
    """The same export run without interruption, straight from the store: (sha256, path)."""

    def __init__(self, store_path: Path, directory: Path):
        self.store_path = store_path
        self.dir = directory
        self.dir.mkdir()
        self.done: dict[str, tuple[str, Path, int, bool]] = {}

    def of(self, job: dict[str, Any]) -> tuple[str, Path, int, bool]:
        f = job["filters"]
        key = json.dumps(
            [job["dataset"], job["format"], job["compression"], f, job["limit"]], sort_keys=True
        )
        if key not in self.done:
            path = self.dir / f"ref{len(self.done)}"
            limit = MAX_RECORDS if job["limit"] is None else min(job["limit"], MAX_RECORDS)
            result = export_to_file(
                self.store_path,
                job["dataset"],
                job["format"],
                path,
                filters=Filters(f["target_id"], f["network"], f["from"], f["to"]),
                limit=limit,
                compression=job["compression"],
            )
            self.done[key] = (result.sha256, path, result.rows, result.truncated)
        return self.done[key]


@dataclass
class Figures:
    rounds: int = 0
    kills: int = 0
    modes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODES, 0))
    accepted: int = 0
    unacknowledged: int = 0  # recorded by the server, but the 202 never reached the client
    completed: int = 0
    expired: int = 0
    failed_three_attempts: int = 0
    retried: int = 0  # jobs that needed more than one attempt
    downloads_checked: int = 0
    lost: int = 0
    corrupt: int = 0
    stray_files: int = 0
    verify_failures: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)


class Crasher:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.data = tmp / "data"
        self.rng = random.Random(SEED)
        self.accepted: dict[str, dict[str, Any]] = {}  # job id -> the request body
        self.settled: dict[str, str] = {}  # job id -> terminal status already checked
        self.figures = Figures()
        self.server: ServeProcess | None = None
        self.refs: References | None = None

    # -- set-up ---------------------------------------------------------------------------

    def fill_store(self) -> None:
        store = SilverStore(self.data / "silver.db")
        try:
            for start in range(0, BIG_ROWS, 10_000):
                rows = transfer_rows(min(10_000, BIG_ROWS - start), target="big", start=start)
                store.ingest("token_transfers", rows)
            store.ingest(
                "token_transfers", transfer_rows(SMALL_ROWS, target="small", start=BIG_ROWS)
            )
        finally:
            store.close()
        self.refs = References(self.data / "silver.db", self.tmp / "references")

    def env(self, mode: str | None) -> dict[str, str]:
        extra = {
            "SILVEREXPORT_MAX_RECORDS": str(MAX_RECORDS),
            "SILVEREXPORT_MAX_CONCURRENT_EXPORTS": "2",  # so that some jobs wait in the queue
            "SILVEREXPORT_PROGRESS_INTERVAL_SECONDS": "0",  # a JobProgressed per batch
            "SILVEREXPORT_CATCH_UP_INTERVAL_SECONDS": "0.2",
        }
        if mode == "expiry":
            extra["SILVEREXPORT_JOB_TTL_SECONDS"] = "0.3"
            extra["SILVEREXPORT_EXPIRY_INTERVAL_SECONDS"] = "0.1"
        return child_env(**extra)

    def start(self, mode: str | None, n: int) -> str:
        self.server = ServeProcess(self.data, self.tmp / f"serve{n:03d}.log", env=self.env(mode))
        return self.server.wait_for_url()

    # -- checks after a restart -----------------------------------------------------------

    def settle(self, base: str) -> None:
        """Every accepted job exists and reaches a terminal state; each new outcome checked."""
        client = Client(base)
        deadline = time.monotonic() + SETTLE
        try:
            for job_id, body in self.accepted.items():
                if self.settled.get(job_id) in ("expired", "failed", "lost", "stuck"):
                    continue  # nothing can change any more, or it is already counted
                while True:
                    status, job = client.json("GET", f"/v1/export/jobs/{job_id}")
                    if status == 404:
                        self.figures.lost += 1
                        self.figures.problem(f"lost: {job_id} {body}")
                        self.settled[job_id] = "lost"
                        break
                    assert status == 200, (status, job)
                    if job["status"] in TERMINAL:
                        self.check_outcome(client, job)
                        break
                    if time.monotonic() > deadline:
                        self.figures.lost += 1
                        self.figures.problem(f"stuck {job['status']}: {job}")
                        self.settled[job_id] = "stuck"
                        break
                    time.sleep(0.02)  # polling the job, as a client does
            self.check_no_active_jobs(client, deadline)
        finally:
            client.close()
        self.check_parts()

    def check_outcome(self, client: Client, job: dict[str, Any]) -> None:
        job_id, status = job["job_id"], job["status"]
        previous = self.settled.get(job_id)
        if job["attempts"] > 1 and previous is None:
            self.figures.retried += 1
        if status == "cancelled":
            self.figures.problem(f"cancelled, though nobody cancelled it: {job}")
        elif status == "failed" or (status == "expired" and job["error"] is not None):
            if job["attempts"] != 3 or "interrupted" not in (job["error"] or ""):
                self.figures.problem(f"failed, not by the three-attempts rule: {job}")
            if previous not in ("failed", "expired"):
                self.figures.failed_three_attempts += 1
            status = "failed"
        elif status == "expired":
            if not job["expires_at"] or job["expires_at"] > _now():
                self.figures.problem(f"expired before its time: {job}")
            if previous is None:
                self.figures.expired += 1
        elif status == "completed" and previous != "completed":
            self.figures.completed += 1
            self.check_download(client, job)
        if status == "expired" and previous == "completed":
            self.figures.expired += 1
        self.settled[job_id] = status

    def check_download(self, client: Client, job: dict[str, Any]) -> None:
        assert self.refs is not None
        status, headers, content = client.request("GET", job["download_url"])
        if status == 410:  # past its retention: expired, or about to be on the next sweep
            _, again = client.json("GET", f"/v1/export/jobs/{job['job_id']}")
            if again["status"] != "expired" and not (
                again["status"] == "completed" and again["expires_at"] <= _now()
            ):
                self.figures.problem(f"410 but {again['status']}: {again}")
            return
        self.figures.downloads_checked += 1
        sha = hashlib.sha256(content).hexdigest()
        ref_sha, ref_path, ref_rows, ref_truncated = self.refs.of(job)
        whole = (
            status == 200
            and sha == job["sha256"]
            and headers.get("etag") == f'"{job["sha256"]}"'
            and int(headers.get("content-length", -1)) == len(content) == job["bytes"]
            and content == ref_path.read_bytes()
            and (job["rows"], job["truncated"]) == (ref_rows, ref_truncated)
        )
        if not whole:
            self.figures.corrupt += 1
            self.figures.problem(
                f"corrupt download: status {status}, {len(content)} bytes, sha {sha}, etag "
                f"{headers.get('etag')}, reference {ref_sha} ({ref_rows} rows): {job}"
            )

    def check_no_active_jobs(self, client: Client, deadline: float) -> None:
        """Jobs whose 202 was lost in the kill are in the log too: they must finish as well."""
        while True:
            active = []
            for status in ("queued", "running"):
                code, page = client.json("GET", f"/v1/export/jobs?status={status}&limit=500")
                assert code == 200, page
                active += page["jobs"]
            if not active:
                return
            if time.monotonic() > deadline:
                self.figures.problem(f"still active after {SETTLE} s: {active[:3]}")
                return
            time.sleep(0.02)

    def check_parts(self) -> None:
        """Every job is over: no attempt's temporary file may be left."""
        parts = sorted(p.name for p in (self.data / "exports").glob("*.part"))
        if parts:
            self.figures.stray_files += len(parts)
            self.figures.problem(f"part files left after settling: {parts}")

    def verify(self, when: str) -> None:
        done = cli("verify", "--data-dir", str(self.data))
        if done.returncode != 0:
            self.figures.verify_failures += 1
            self.figures.problem(f"verify {when}: exit {done.returncode}: {done.stdout}")

    # -- one round ------------------------------------------------------------------------

    def round(self, n: int, mode: str) -> None:
        base = self.start(mode, n)
        self.settle(base)
        choose = random.Random(self.rng.random())
        delay = self.rng.random()
        if mode == "appends":
            bodies = [choose.choice(POOL) for _ in range(40)]
            after = choose.randint(1, 6)
        elif mode == "export":
            bodies = [choose.choice(LARGE) for _ in range(6)] + [choose.choice(SMALL)]
            after = 0
        else:
            bodies = [choose.choice(SMALL) for _ in range(6)] + [choose.choice(LARGE)]
            after = 0
        submitter = Submitter(base, bodies)
        submitter.start()
        try:
            if mode == "appends":
                submitter.wait_for(lambda: len(submitter.ids) >= after)
                time.sleep(delay * 0.05)  # the random moment of the kill
            else:
                submitter.join(timeout=SETTLE)
                self.wait_for_status(base, submitter.ids, "running" if mode == "export" else None)
                time.sleep(delay * (0.3 if mode == "export" else 0.02 if mode == "rename" else 0.8))
        finally:
            assert self.server is not None
            self.server.kill()
            submitter.join(timeout=SETTLE)
        self.figures.kills += 1
        self.figures.modes[mode] += 1
        for job_id in submitter.ids:
            self.accepted[job_id] = submitter.bodies[job_id]
        self.figures.accepted += len(submitter.ids)
        for text in submitter.refused:
            self.figures.problem(f"round {n} ({mode}): {text}")
        self.verify(f"after kill {n} ({mode})")
        self.figures.rounds += 1

    def wait_for_status(self, base: str, ids: list[str], wanted: str | None) -> None:
        """Until one of `ids` is running (`wanted`), or one has completed (None)."""
        client = Client(base)
        deadline = time.monotonic() + SETTLE
        try:
            while time.monotonic() < deadline:
                for job_id in ids:
                    job = client.json("GET", f"/v1/export/jobs/{job_id}")[1]
                    if job["status"] == (wanted or "completed") or job["status"] in TERMINAL:
                        return
                time.sleep(0.005)
        finally:
            client.close()

    def final(self) -> None:
        """A last clean start: everything settles; a fresh uninterrupted job of every request
        gives the reference's bytes; only completed jobs' files remain; a graceful stop."""
        base = self.start(None, ROUNDS)
        assert self.server is not None
        try:
            self.settle(base)
            client = Client(base)
            ids_in_log = set()
            cursor = None
            while True:
                path = "/v1/export/jobs?limit=500" + (f"&cursor={cursor}" if cursor else "")
                code, page = client.json("GET", path)
                ids_in_log |= {j["job_id"] for j in page["jobs"]}
                if not (cursor := page["next_cursor"]):
                    break
            self.figures.unacknowledged = len(ids_in_log - set(self.accepted))
            fresh = []
            for body in POOL:
                code, job = client.json("POST", "/v1/export/dataset", body)
                assert code == 202, job
                fresh.append(job["job_id"])
                self.accepted[job["job_id"]] = body
            self.settle(base)
            for job_id in fresh:
                assert self.settled[job_id] == "completed", self.settled[job_id]
            client.close()
            self.check_files(ids_in_log | set(fresh), base)
        finally:
            assert self.server.stop() == 0
        self.verify("after the final graceful stop")

    def check_files(self, job_ids: set[str], base: str) -> None:
        """The export directory holds exactly the completed jobs' files."""
        client = Client(base)
        wanted = set()
        try:
            for job_id in job_ids:
                job = client.json("GET", f"/v1/export/jobs/{job_id}")[1]
                if job["status"] == "completed":
                    ext = job["format"] + (".gz" if job["compression"] else "")
                    wanted.add(f"{job_id}.{ext}")
        finally:
            client.close()
        present = {p.name for p in (self.data / "exports").iterdir()}
        if present != wanted:
            self.figures.stray_files += len(present - wanted)
            self.figures.problem(
                f"files: stray {sorted(present - wanted)[:5]}, missing {sorted(wanted - present)}"
            )
            self.figures.lost += len(wanted - present)


class Submitter(threading.Thread):
    """A client submitting `bodies` one after another until done or the server is gone."""

    def __init__(self, base: str, bodies: list[dict[str, Any]]):
        super().__init__(name="crash-submitter", daemon=True)
        self.client = Client(base)
        self.todo = bodies
        self.ids: list[str] = []
        self.bodies: dict[str, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.ended = False
        self.refused: list[str] = []

    def run(self) -> None:
        try:
            for body in self.todo:
                try:
                    status, headers, content = self.client.request(
                        "POST", "/v1/export/dataset", body
                    )
                except OSError:
                    return  # killed: a request without an answer was not accepted
                if status == 202:
                    job_id = headers["location"].rsplit("/", 1)[1]
                    with self.cond:
                        self.bodies[job_id] = body
                        self.ids.append(job_id)
                        self.cond.notify_all()
                else:  # reported by the round: an exception here would go unseen
                    self.refused.append(f"submit answered {status}: {content[:300]!r}")
                    return
        finally:
            self.client.close()
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def wait_for(self, predicate) -> None:
        with self.cond:
            self.cond.wait_for(lambda: predicate() or self.ended, timeout=SETTLE)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.mark.timeout(3600 if soak() else 600)
def test_sigkill_at_random_moments_loses_and_corrupts_nothing(tmp_path, request):
    crasher = Crasher(tmp_path)
    crasher.fill_store()
    started = time.monotonic()
    # Every mode in every block of four rounds, in a seeded order.
    modes: list[str] = []
    while len(modes) < ROUNDS:
        block = list(MODES)
        crasher.rng.shuffle(block)
        modes += block
    try:
        for n, mode in enumerate(modes[:ROUNDS]):
            crasher.round(n, mode)
            crasher.server = None
        crasher.final()
    finally:
        if crasher.server is not None:
            crasher.server.close()
    f = crasher.figures
    figures = {
        "seed": SEED,
        "rounds": f.rounds,
        "kills": f.kills,
        "kills_by_mode": f.modes,
        "jobs_accepted": f.accepted,
        "unacknowledged_jobs_in_log": f.unacknowledged,
        "completed": f.completed,
        "expired": f.expired,
        "failed_after_3_attempts": f.failed_three_attempts,
        "jobs_retried": f.retried,
        "downloads_checked": f.downloads_checked,
        "jobs_lost": f.lost,
        "corrupt_files": f.corrupt,
        "stray_files": f.stray_files,
        "verify_failures": f.verify_failures,
        "seconds": round(time.monotonic() - started, 1),
    }
    record(request, "crash suite", figures, tmp_path)
    assert not f.problems, "\n".join(f.problems)
    assert f.lost == 0 and f.corrupt == 0 and f.verify_failures == 0 and f.stray_files == 0
    assert f.kills >= ROUNDS and f.accepted > 0
