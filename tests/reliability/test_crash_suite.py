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
by the three-attempts rule (counted apart). The checks are tests/reliability/crash_checks.py,
shared with the multi-node crash suite (test_crash_multinode.py).

Size: SILVEREXPORT_CRASH_ROUNDS (default 20), SILVEREXPORT_CRASH_SEED; SILVEREXPORT_SOAK=1 runs
80 rounds on a larger store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .crash_checks import (
    SEED,
    SETTLE,
    CrashChecks,
    Submitter,
    fill_store,
    mode_env,
    round_plan,
    seeded_modes,
)
from .reliability_figures import record
from .serve_process import ServeProcess, child_env, soak

# The checks read the export directory (partials, leftovers) as the crash left it.
pytestmark = pytest.mark.file_storage

ROUNDS = 80 if soak() else int(os.environ.get("SILVEREXPORT_CRASH_ROUNDS", "20"))
BIG_ROWS = 90_000 if soak() else 40_000


class Crasher(CrashChecks):
    def __init__(self, tmp: Path):
        self.data = tmp / "data"
        super().__init__(tmp, SEED, self.data / "silver.db", self.data / "exports")
        self.server: ServeProcess | None = None

    def bases(self) -> list[str]:
        assert self.server is not None
        return [self.server.base_url]

    def start(self, mode: str | None, n: int) -> str:
        env = child_env(**mode_env(mode))
        self.server = ServeProcess(self.data, self.tmp / f"serve{n:03d}.log", env=env)
        return self.server.wait_for_url()

    def round(self, n: int, mode: str) -> None:
        base = self.start(mode, n)
        self.settle()
        _, delay, bodies, after = round_plan(self.rng, mode)
        submitter = Submitter(bodies, lambda: base)
        submitter.start()
        try:
            self.wait_for_moment(mode, submitter, after, delay, base)
        finally:
            assert self.server is not None
            self.server.kill()
            submitter.join(timeout=SETTLE)
        self.figures.kills += 1
        self.figures.modes[mode] += 1
        self.accept(submitter, f"round {n} ({mode})")
        self.verify(f"after kill {n} ({mode})", self.data)
        self.figures.rounds += 1

    def final(self) -> None:
        """A last clean start, every check, and a graceful stop."""
        base = self.start(None, ROUNDS)
        assert self.server is not None
        try:
            self.final_checks(lambda: base)
        finally:
            assert self.server.stop() == 0
        self.verify("after the final graceful stop", self.data)


@pytest.mark.timeout(3600 if soak() else 600)
def test_sigkill_at_random_moments_loses_and_corrupts_nothing(tmp_path, request):
    crasher = Crasher(tmp_path)
    fill_store(crasher.data / "silver.db", BIG_ROWS)
    started = time.monotonic()
    try:
        for n, mode in enumerate(seeded_modes(crasher.rng, ROUNDS)):
            crasher.round(n, mode)
            crasher.server = None
        crasher.final()
    finally:
        if crasher.server is not None:
            crasher.server.close()
    f = crasher.figures
    record(request, "crash suite", f.summary(SEED, time.monotonic() - started), tmp_path)
    f.assert_clean(ROUNDS)
