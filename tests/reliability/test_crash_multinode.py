"""The crash suite on several nodes (SPEC §8): three real `silverexport serve` nodes on one
PostgreSQL event log and one shared export directory (`SILVEREXPORT_STORAGE_URL=file://…`),
each with a data dir of its own; every round one of them, chosen by a seeded RNG, is SIGKILLed
while clients keep submitting to random live nodes.

A round restarts the node killed by the round before, settles and checks everything accepted
so far, submits a new mix of jobs to random live nodes and kills a random node at one of the
single-node suite's four moments (test_crash_suite.py: `appends`, `export`, `rename`,
`expiry`; the node restarted for an `expiry` round completes its jobs with a retention of
0.3 s, and the round's jobs go to it). Clients send every request with an Idempotency-Key and,
when a node dies under it, send it again to another live node, as a client behind a load
balancer does: the key must make one job of it (so no job of the log may be unacknowledged).

After each kill: `silverexport verify` on the PostgreSQL log (the other nodes still running),
then the two survivors alone must bring every accepted job to a terminal state, the dead
node's running jobs as a new attempt (its lease expires). Each check asks a random live node.
At the end every node is up, a fresh job of every request must give the reference's bytes, the
shared directory must hold exactly the completed jobs' files (no node's own data dir any), and
after a graceful stop of all three the log verifies. The checks are crash_checks.py's.

Size: SILVEREXPORT_CRASH_NODE_ROUNDS (default 4), SILVEREXPORT_CRASH_SEED; SILVEREXPORT_SOAK=1
runs 40 rounds on a larger store.
"""

from __future__ import annotations

import os
import random
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
from .multinode import Cluster
from .reliability_figures import record
from .serve_process import child_env, soak

ROUNDS = 40 if soak() else int(os.environ.get("SILVEREXPORT_CRASH_NODE_ROUNDS", "4"))
BIG_ROWS = 60_000 if soak() else 20_000
NAMES = ("a", "b", "c")
LEASE_SECONDS = 2.0


class NodeCrasher(CrashChecks):
    """The three nodes, which of them live, and the rounds that kill one."""

    def __init__(self, tmp: Path, postgres_url: str):
        self.cluster = Cluster(tmp / "cluster", postgres_url, lease_seconds=LEASE_SECONDS)
        super().__init__(tmp, SEED, self.cluster.silver, self.cluster.shared)
        self.url = postgres_url
        self.live: tuple[str, ...] = ()
        self.down: str | None = None
        self.by_node = dict.fromkeys(NAMES, 0)
        self.resent = 0
        self.replays = 0
        self.settle_seconds: list[float] = []  # after each kill, until the survivors settled
        self.routing = random.Random(SEED + 2)  # which node the final checks submit to
        self.submitting = random.Random(SEED + 3)  # which node each round's client submits to

    def bases(self) -> list[str]:
        return [self.cluster.nodes[name].url for name in self.live]

    def pick(self) -> str:
        """A random live node's URL."""
        return self.url_of(self.routing.choice(self.live))

    def target(self, expiry_node: str | None) -> str:
        """Where the submitter sends its next request: the node started with a short retention
        in an `expiry` round while it lives, else a random live node (own RNG: its thread)."""
        if expiry_node is not None and expiry_node in self.live:
            return self.url_of(expiry_node)
        return self.url_of(self.submitting.choice(self.live))

    def start_all(self) -> None:
        self.cluster.env.update(mode_env(None))  # every node's, unless a restart says more
        self.cluster.start_all(NAMES)
        self.live = NAMES

    def restart(self, mode: str | None) -> None:
        """The node killed last, back with the settings of this round's `mode`."""
        if self.down is None:
            return
        self.cluster.start(self.down, **mode_env(mode))
        self.live = tuple(name for name in NAMES if name in (*self.live, self.down))
        self.down = None

    def round(self, n: int, mode: str) -> None:
        expiry_node = self.down if mode == "expiry" else None
        self.restart(mode)
        self.settle()
        _, delay, bodies, after = round_plan(self.rng, mode)
        victim = self.rng.choice(NAMES)
        keys = [f"round{n}-{i}" for i in range(len(bodies))]
        submitter = Submitter(bodies, lambda: self.target(expiry_node), keys)
        submitter.start()
        try:
            on_victim = lambda: [  # noqa: E731
                j for j, b in submitter.answered_by.items() if b == self.url_of(victim)
            ]
            self.wait_for_moment(mode, submitter, after, delay, self.url_of(victim), on_victim)
        finally:
            self.live = tuple(name for name in self.live if name != victim)
            self.cluster.kill(victim)
            killed_at = time.monotonic()
            submitter.join(timeout=SETTLE)
        self.down = victim
        self.by_node[victim] += 1
        self.figures.kills += 1
        self.figures.modes[mode] += 1
        self.resent += submitter.resent
        self.replays += submitter.replays
        self.accept(submitter, f"round {n} ({mode}, node {victim} killed)")
        self.verify(f"after kill {n} ({mode}, node {victim})")
        # The survivors alone: the dead node's jobs must move on without it.
        self.settle(parts=False)
        self.settle_seconds.append(time.monotonic() - killed_at)
        self.figures.rounds += 1

    def graceful_stop(self, name: str) -> None:
        code = self.cluster.stop(name)
        if code != 0:
            self.figures.problem(f"node {name} stopped with exit code {code}")

    def url_of(self, name: str) -> str:
        return self.cluster.nodes[name].url

    def verify(self, when: str, data_dir: Path | None = None, env=None) -> None:
        """`silverexport verify` on the PostgreSQL log, from a data dir of no node's."""
        empty = self.tmp / "verify-dir"
        empty.mkdir(exist_ok=True)
        env = env or child_env(SILVEREXPORT_EVENT_LOG_URL=self.url)
        super().verify(when, data_dir or empty, env)

    def final(self) -> None:
        """A last clean start of every node on the same settings (the survivors stopped
        gracefully first), every check, and a graceful stop of all."""
        for name in self.live:
            self.graceful_stop(name)
        self.cluster.start_all(NAMES)
        self.live, self.down = NAMES, None
        try:
            self.final_checks(self.pick)
            for name in NAMES:
                local = self.cluster.nodes[name].data_dir / "exports"
                if local.exists() and any(local.iterdir()):
                    self.figures.stray_files += 1
                    self.figures.problem(f"node {name} wrote into its own data dir: {local}")
        finally:
            for name in NAMES:
                self.graceful_stop(name)
        self.verify("after the final graceful stop of every node")


@pytest.mark.timeout(3600 if soak() else 900)
def test_sigkill_of_random_nodes_loses_and_corrupts_nothing(tmp_path, request, postgres_url):
    crasher = NodeCrasher(tmp_path, postgres_url)
    fill_store(crasher.cluster.silver, BIG_ROWS)
    started = time.monotonic()
    modes = seeded_modes(crasher.rng, ROUNDS)
    if modes[0] == "expiry":  # the first round has no node restarted for it
        modes[0], modes[1] = modes[1], modes[0]
    try:
        crasher.start_all()
        for n, mode in enumerate(modes):
            crasher.round(n, mode)
        crasher.final()
    finally:
        crasher.cluster.close()
        f = crasher.figures
        figures = f.summary(
            SEED,
            time.monotonic() - started,
            nodes=len(NAMES),
            kills_by_node=crasher.by_node,
            requests_resent_to_another_node=crasher.resent,
            answered_by_idempotency_key=crasher.replays,
            slowest_settle_after_kill_s=round(max(crasher.settle_seconds, default=0), 1),
        )
        record(request, "multi-node crash suite", figures, tmp_path)  # a failure's figures too
    f.assert_clean(ROUNDS)
    assert f.unacknowledged == 0, "a resent request made a second job"
