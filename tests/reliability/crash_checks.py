"""What both crash suites (one node, and several on one PostgreSQL log) submit and check.

The job mix, the references (the same export run without interruption, straight from the
store), the client that submits while the kills happen, and the checks after them: every job
that got a `202` exists and reaches a terminal state, every download is whole and equal to its
reference, no partial file is left, the export store holds exactly the completed jobs' files,
and `silverexport verify` passes. A suite says only how it starts and kills its servers.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from silverexport.silver.store import SilverStore
from silverexport.silver.writers import Filters, export_to_file
from tests.actors.conftest import transfer_rows

from .serve_process import Client, cli

SEED = int(os.environ.get("SILVEREXPORT_CRASH_SEED", "6061"))
SMALL_ROWS = 600
MAX_RECORDS = 100_000
SETTLE = 90.0  # seconds for every accepted job to reach a terminal state after a restart
VISIBLE = 2.0  # SPEC §8: a job made on one node is visible on every other within 2 s
MODES = ("appends", "export", "rename", "expiry")
TERMINAL = {"completed", "failed", "cancelled", "expired"}
T0 = 1_700_000_000_000  # transfer_rows' first block_time (epoch ms)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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


def fill_store(path: Path, big_rows: int) -> None:
    """`big_rows` transfers of target "big", then SMALL_ROWS of target "small"."""
    store = SilverStore(path)
    try:
        for start in range(0, big_rows, 10_000):
            rows = transfer_rows(min(10_000, big_rows - start), target="big", start=start)
            store.ingest("token_transfers", rows)
        store.ingest("token_transfers", transfer_rows(SMALL_ROWS, target="small", start=big_rows))
    finally:
        store.close()


def seeded_modes(rng: random.Random, rounds: int) -> list[str]:
    """Every mode in every block of four rounds, in a seeded order."""
    modes: list[str] = []
    while len(modes) < rounds:
        block = list(MODES)
        rng.shuffle(block)
        modes += block
    return modes[:rounds]


def mode_env(mode: str | None) -> dict[str, str]:
    """The settings of a server started for a round of `mode` (None: the last clean start)."""
    extra = {
        "SILVEREXPORT_MAX_RECORDS": str(MAX_RECORDS),
        "SILVEREXPORT_MAX_CONCURRENT_EXPORTS": "2",  # so that some jobs wait in the queue
        "SILVEREXPORT_PROGRESS_INTERVAL_SECONDS": "0",  # a JobProgressed per batch
        "SILVEREXPORT_CATCH_UP_INTERVAL_SECONDS": "0.2",
    }
    if mode == "expiry":
        extra["SILVEREXPORT_JOB_TTL_SECONDS"] = "0.3"
        extra["SILVEREXPORT_EXPIRY_INTERVAL_SECONDS"] = "0.1"
    return extra


def round_plan(rng: random.Random, mode: str) -> tuple[random.Random, float, list[dict], int]:
    """(the round's own RNG, the kill's random delay, the bodies, how many 202s before the
    kill in `appends` mode): drawn in the same order by both crash suites."""
    choose = random.Random(rng.random())
    delay = rng.random()
    if mode == "appends":
        return choose, delay, [choose.choice(POOL) for _ in range(40)], choose.randint(1, 6)
    if mode == "export":
        return choose, delay, [choose.choice(LARGE) for _ in range(6)] + [choose.choice(SMALL)], 0
    return choose, delay, [choose.choice(SMALL) for _ in range(6)] + [choose.choice(LARGE)], 0


# The random moment of each mode's kill: `delay` (0..1) times this many seconds.
KILL_WINDOW = {"appends": 0.05, "export": 0.3, "rename": 0.02, "expiry": 0.8}


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

    def summary(self, seed: int, seconds: float, **more: Any) -> dict[str, Any]:
        """The figures a suite prints (reliability_figures.record), `more` before the time."""
        return {
            "seed": seed,
            "rounds": self.rounds,
            "kills": self.kills,
            "kills_by_mode": self.modes,
            "jobs_accepted": self.accepted,
            "unacknowledged_jobs_in_log": self.unacknowledged,
            "completed": self.completed,
            "expired": self.expired,
            "failed_after_3_attempts": self.failed_three_attempts,
            "jobs_retried": self.retried,
            "downloads_checked": self.downloads_checked,
            "jobs_lost": self.lost,
            "corrupt_files": self.corrupt,
            "stray_files": self.stray_files,
            "verify_failures": self.verify_failures,
            **more,
            "seconds": round(seconds, 1),
        }

    def assert_clean(self, rounds: int) -> None:
        assert not self.problems, "\n".join(self.problems)
        assert self.lost == 0 and self.corrupt == 0 and self.verify_failures == 0
        assert self.stray_files == 0
        assert self.kills >= rounds and self.accepted > 0


class CrashChecks:
    """The accepted jobs and their checks. A suite gives `bases()`, the URLs of the servers
    alive now; each check asks one of them, chosen by a seeded RNG, so on several nodes every
    answer comes from whichever node, as a client behind a load balancer gets it."""

    def __init__(self, tmp: Path, seed: int, store_path: Path, exports: Path):
        self.tmp = tmp
        self.rng = random.Random(seed)
        self.asking = random.Random(seed + 1)  # which server answers each check
        self.accepted: dict[str, dict[str, Any]] = {}  # job id -> the request body
        self.settled: dict[str, str] = {}  # job id -> terminal status already checked
        self.figures = Figures()
        self.refs = References(store_path, tmp / "references")
        self.exports = exports  # the export store's directory

    def bases(self) -> list[str]:
        raise NotImplementedError

    def accept(self, submitter: Submitter, when: str) -> None:
        for job_id in submitter.ids:
            self.accepted[job_id] = submitter.bodies[job_id]
        self.figures.accepted += len(submitter.ids)
        for text in submitter.refused:
            self.figures.problem(f"{when}: {text}")

    # -- settling -------------------------------------------------------------------------

    def settle(self, parts: bool = True) -> None:
        """Every accepted job exists and reaches a terminal state; each new outcome checked;
        with `parts`, no attempt's temporary file is left."""
        clients = [Client(base) for base in self.bases()]
        ask = lambda: self.asking.choice(clients)  # noqa: E731
        deadline = time.monotonic() + SETTLE
        try:
            for job_id, body in self.accepted.items():
                if self.settled.get(job_id) in ("expired", "failed", "lost", "stuck"):
                    continue  # nothing can change any more, or it is already counted
                self.settle_one(ask, job_id, body, deadline)
            self.check_no_active_jobs(ask(), deadline)
        finally:
            for client in clients:
                client.close()
        if parts:
            self.check_parts()

    def settle_one(
        self, ask: Callable[[], Client], job_id: str, body: dict[str, Any], deadline: float
    ) -> None:
        unseen_since: float | None = None
        while True:
            client = ask()
            status, job = client.json("GET", f"/v1/export/jobs/{job_id}")
            if status == 404:
                unseen_since = unseen_since or time.monotonic()
                if time.monotonic() - unseen_since > VISIBLE:
                    self.figures.lost += 1
                    self.figures.problem(f"lost: {job_id} {body}")
                    self.settled[job_id] = "lost"
                    return
            else:
                assert status == 200, (status, job)
                unseen_since = None
                if job["status"] in TERMINAL:
                    self.check_outcome(client, job)
                    return
                if time.monotonic() > deadline:
                    self.figures.lost += 1
                    self.figures.problem(f"stuck {job['status']}: {job}")
                    self.settled[job_id] = "stuck"
                    return
            time.sleep(0.02)  # polling the job, as a client does

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
            if not job["expires_at"] or job["expires_at"] > now():
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
        status, headers, content = client.request("GET", job["download_url"])
        if status == 410:  # past its retention: expired, or about to be on the next sweep
            _, again = client.json("GET", f"/v1/export/jobs/{job['job_id']}")
            if again["status"] != "expired" and not (
                again["status"] == "completed" and again["expires_at"] <= now()
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
        parts = sorted(p.name for p in self.exports.glob("*.part"))
        if parts:
            self.figures.stray_files += len(parts)
            self.figures.problem(f"part files left after settling: {parts}")

    def verify(self, when: str, data_dir: Path, env: dict[str, str] | None = None) -> None:
        done = cli("verify", "--data-dir", str(data_dir), env=env)
        if done.returncode != 0:
            self.figures.verify_failures += 1
            self.figures.problem(
                f"verify {when}: exit {done.returncode}: {done.stdout} {done.stderr[-2000:]}"
            )

    def wait_for_moment(
        self,
        mode: str,
        submitter: Submitter,
        after: int,
        delay: float,
        base: str,
        watched: Callable[[], list[str]] | None = None,
    ) -> None:
        """Until the round's random moment of the kill: `after` 202s into the submissions
        (`appends`), or once a job of `watched()` (default: the round's) runs (`export`) or
        completes (`rename`, `expiry`) on `base`; then `delay` of KILL_WINDOW[mode]."""
        if mode == "appends":
            submitter.wait_for(lambda: len(submitter.ids) >= after)
        else:
            submitter.join(timeout=SETTLE)
            ids = (watched and watched()) or submitter.ids
            self.wait_for_status(base, ids, "running" if mode == "export" else None)
        time.sleep(delay * KILL_WINDOW[mode])  # the random moment of the kill

    def wait_for_status(self, base: str, ids: list[str], wanted: str | None) -> None:
        """Until one of `ids` is running (`wanted`), or one has completed (None)."""
        client = Client(base)
        deadline = time.monotonic() + SETTLE
        try:
            while time.monotonic() < deadline:
                for job_id in ids:
                    status, job = client.json("GET", f"/v1/export/jobs/{job_id}")
                    if status != 200:
                        continue  # made on another node a moment ago (visible within 2 s)
                    if job["status"] == (wanted or "completed") or job["status"] in TERMINAL:
                        return
                time.sleep(0.005)
        finally:
            client.close()

    # -- the last clean start -------------------------------------------------------------

    def final_checks(self, submit_to: Callable[[], str]) -> None:
        """On servers started cleanly: everything settles; a fresh uninterrupted job of every
        request gives the reference's bytes; the store holds only the completed jobs' files."""
        self.settle()
        client = Client(submit_to())
        try:
            ids_in_log = self.all_job_ids(client)
        finally:
            client.close()
        self.figures.unacknowledged = len(ids_in_log - set(self.accepted))
        fresh = []
        for body in POOL:
            client = Client(submit_to())
            try:
                code, job = client.json("POST", "/v1/export/dataset", body)
            finally:
                client.close()
            assert code == 202, job
            fresh.append(job["job_id"])
            self.accepted[job["job_id"]] = body
        self.settle()
        for job_id in fresh:
            assert self.settled[job_id] == "completed", self.settled[job_id]
        self.check_files(ids_in_log | set(fresh), submit_to())

    @staticmethod
    def all_job_ids(client: Client) -> set[str]:
        ids: set[str] = set()
        cursor = None
        while True:
            path = "/v1/export/jobs?limit=500" + (f"&cursor={cursor}" if cursor else "")
            code, page = client.json("GET", path)
            assert code == 200, page
            ids |= {j["job_id"] for j in page["jobs"]}
            if not (cursor := page["next_cursor"]):
                return ids

    def check_files(self, job_ids: Iterable[str], base: str) -> None:
        """The export directory holds exactly the completed jobs' files."""
        client = Client(base)
        wanted = set()
        try:
            for job_id in job_ids:
                job = client.json("GET", f"/v1/export/jobs/{job_id}")[1]
                if job["status"] == "completed":
                    wanted.add(completed_file_name(client, job_id))
        finally:
            client.close()
        present = {p.name for p in self.exports.iterdir()}
        if present != wanted:
            self.figures.stray_files += len(present - wanted)
            self.figures.problem(
                f"files: stray {sorted(present - wanted)[:5]}, missing {sorted(wanted - present)}"
            )
            self.figures.lost += len(wanted - present)


def completed_file_name(client: Client, job_id: str) -> str:
    """The file name the job's JobCompleted records (its completing attempt's own)."""
    status, body = client.json("GET", f"/v1/export/jobs/{job_id}/events")
    assert status == 200, body
    (done,) = [e for e in body["events"] if e["type"] == "JobCompleted"]
    return done["data"]["file_name"]


class Submitter(threading.Thread):
    """A client submitting `bodies` one after another, each to the server `pick()` names.

    Without `keys`, a request left without an answer (the server killed) ends the client: it
    was not accepted. With `keys` (one Idempotency-Key a body), the client sends that body
    again, with its key, to the server `pick()` names next, as a client of several nodes does:
    the key makes one job of it however many nodes saw it (a `200` names the first one).
    """

    def __init__(
        self,
        bodies: list[dict[str, Any]],
        pick: Callable[[], str],
        keys: list[str] | None = None,
    ):
        super().__init__(name="crash-submitter", daemon=True)
        self.todo = bodies
        self.pick = pick
        self.keys = keys
        self.clients: dict[str, Client] = {}
        self.ids: list[str] = []
        self.bodies: dict[str, dict[str, Any]] = {}
        self.answered_by: dict[str, str] = {}  # job id -> the base URL that answered
        self.resent = 0  # requests sent again after one went unanswered
        self.replays = 0  # of those, answered 200: the first had been recorded
        self.cond = threading.Condition()
        self.ended = False
        self.refused: list[str] = []

    def run(self) -> None:
        try:
            for i, body in enumerate(self.todo):
                if not self.submit(body, None if self.keys is None else self.keys[i]):
                    return
        finally:
            for client in self.clients.values():
                client.close()
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def submit(self, body: dict[str, Any], key: str | None) -> bool:
        """One body until answered; False when this client should stop."""
        headers = {"Idempotency-Key": key} if key else None
        deadline = time.monotonic() + SETTLE
        sent_before = False
        while time.monotonic() < deadline:
            base = self.pick()
            client = self.clients.setdefault(base, Client(base))
            try:
                status, _, content = client.request(
                    "POST", "/v1/export/dataset", body, headers=headers
                )
            except OSError:
                if key is None:
                    return False  # killed: a request without an answer was not accepted
                self.resent += 1
                sent_before = True
                continue
            if status == 202 or (status == 200 and sent_before):
                job_id = json.loads(content)["job_id"]
                self.replays += status == 200
                with self.cond:
                    self.bodies[job_id] = body
                    self.ids.append(job_id)
                    self.answered_by[job_id] = base
                    self.cond.notify_all()
                return True
            # Reported by the suite: an exception here would go unseen.
            self.refused.append(f"submit to {base} answered {status}: {content[:300]!r}")
            return False
        self.refused.append(f"no server accepted {body} in {SETTLE} s")
        return False

    def wait_for(self, predicate) -> None:
        with self.cond:
            self.cond.wait_for(lambda: predicate() or self.ended, timeout=SETTLE)
