"""Several real `silverexport serve` nodes forming one service, for the multi-node tests, the
multi-node crash suite and the 1-vs-N-node bench.

Each node is a child process on 127.0.0.1 and a free port, with a data dir of its own (no local
disk is shared, as on separate machines), started with the same event log (one PostgreSQL
database), the same export store and the same Silver rows. By default the export store is
`SILVEREXPORT_STORAGE_URL=file://<shared dir>` (standing for an NFS mount) and the Silver rows
are one silver.db copied byte for byte into every data dir; `silver_url` (a PostgreSQL Silver
store) and `storage_url` with `storage_env` (an `s3://` bucket, its endpoint and AWS_* keys)
make a deployment with no shared directory at all. Nodes are started and waited for
(`/healthz` answering 200), and SIGKILLed, SIGSTOPped or stopped by their pid; `close()`
leaves no process behind.

    with Cluster(tmp_path, postgres_url, lease_seconds=2) as cluster:
        a, b = cluster.start("a"), cluster.start("b")
        status, job = a.client().json("POST", "/v1/export/dataset", {...})
        cluster.kill("a")
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from silverexport.silver.port import SilverBackend
from silverexport.silver.store import SilverStore
from tests.actors.conftest import transfer_rows

from .serve_process import ALICE, DEADLINE, Client, ServeProcess, child_env

SLOW_RUNNER = "tests.reliability.slow_serve"
TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})


def wait_for(predicate: Callable[[], Any], timeout: float = DEADLINE, what: str = "it") -> Any:
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        with contextlib.suppress(OSError):  # a node being killed or started refuses for a while
            last = predicate()
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last})")
        time.sleep(0.02)  # poll interval of a deadline-bounded wait


@dataclass
class Node:
    """One serve process of the cluster."""

    name: str
    data_dir: Path
    process: ServeProcess
    url: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, headers: dict[str, str] | None = None, timeout: float = DEADLINE) -> Client:
        """A new keep-alive client of this node (one per thread)."""
        return Client(self.url, headers or ALICE, timeout=timeout)

    def alive(self) -> bool:
        return self.process.proc.poll() is None

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")


@dataclass
class Cluster:
    """Nodes on one PostgreSQL event log and one shared export directory, under `root`."""

    root: Path
    event_log_url: str
    lease_seconds: float = 2.0
    catch_up_seconds: float = 0.5
    slow_exports: bool = False  # run nodes through tests/reliability/slow_serve.py
    batch_rows: int = 100
    batch_seconds: float = 0.1
    silver_url: str = ""  # a PostgreSQL Silver database shared by every node ("": silver.db)
    env: dict[str, str] = field(default_factory=dict)  # more settings for every node
    storage_url: str = ""  # where export files go ("": a directory every node shares)
    storage_env: dict[str, str] = field(default_factory=dict)  # S3 endpoint, AWS_* keys
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.shared: Path | None = None
        if not self.storage_url:
            self.shared = self.root / "shared-exports"
            self.shared.mkdir(exist_ok=True)
        # The SQLite store of the same rows: every node's copy, or (with silver_url) the
        # reference a test compares the PostgreSQL store's exports with; never shared.
        self.silver = self.root / "silver.db"
        self._started = 0

    # -- data -----------------------------------------------------------------------------

    def seed(self, rows: Iterable[dict] | None = None, dataset: str = "token_transfers") -> Path:
        """Ingest rows (default: 2,000 token transfers) into the cluster's Silver store: the
        PostgreSQL one every node reads (silver_url), or the silver.db every node started
        afterwards gets a copy of. The SQLite file gets them either way."""
        rows = list(transfer_rows(2000) if rows is None else rows)
        stores: list[SilverBackend] = [SilverStore(self.silver)]
        if self.silver_url:
            from silverexport.silver.postgres_store import PostgresSilverStore

            stores.append(PostgresSilverStore(self.silver_url))
        for store in stores:
            try:
                store.ingest(dataset, rows)
            finally:
                store.close()
        return self.silver

    def _copy_silver(self, data_dir: Path) -> None:
        if self.silver_url or not self.silver.exists():
            return
        src = sqlite3.connect(self.silver)
        dst = sqlite3.connect(data_dir / "silver.db")
        try:
            src.backup(dst)  # a consistent copy, WAL or not
        finally:
            dst.close()
            src.close()

    # -- nodes ----------------------------------------------------------------------------

    def node_env(self, name: str, **extra: str) -> dict[str, str]:
        env = {
            "SILVEREXPORT_EVENT_LOG_URL": self.event_log_url,
            "SILVEREXPORT_STORAGE_URL": self.storage_url or self.shared.as_uri(),
            **({"SILVEREXPORT_SILVER_URL": self.silver_url} if self.silver_url else {}),
            **self.storage_env,
            "SILVEREXPORT_NODE_ID": name,
            "SILVEREXPORT_LEASE_SECONDS": str(self.lease_seconds),
            "SILVEREXPORT_CATCH_UP_INTERVAL_SECONDS": str(self.catch_up_seconds),
            "SILVEREXPORT_PROGRESS_INTERVAL_SECONDS": "0.2",
            **self.env,
            **extra,
        }
        if self.slow_exports:
            env["MULTINODE_BATCH_ROWS"] = str(self.batch_rows)
            env["MULTINODE_BATCH_SECONDS"] = str(self.batch_seconds)
        return child_env(**env)

    def spawn(self, name: str, **extra: str) -> Node:
        """Start node `name` (a fresh data dir the first time, its own again on a restart)
        without waiting for it; `extra` are more SILVEREXPORT_* settings for it alone."""
        if name in self.nodes and self.nodes[name].alive():
            raise RuntimeError(f"node {name} is already running")
        data_dir = self.root / f"node-{name}"
        if not data_dir.exists():
            data_dir.mkdir()
            self._copy_silver(data_dir)
        self._started += 1
        process = ServeProcess(
            data_dir,
            self.root / f"{name}-{self._started:03d}.log",
            env=self.node_env(name, **extra),
            module=SLOW_RUNNER if self.slow_exports else "silverexport",
        )
        node = Node(name, data_dir, process)
        self.nodes[name] = node
        return node

    def start(self, name: str, **extra: str) -> Node:
        """Start node `name` and wait until it serves (its URL printed, /healthz 200)."""
        node = self.spawn(name, **extra)
        node.url = node.process.wait_for_url()
        client = node.client(timeout=5)
        try:
            wait_for(lambda: client.request("GET", "/healthz")[0] == 200, what=f"{name} healthy")
        finally:
            client.close()
        return node

    def start_all(self, names: Iterable[str]) -> list[Node]:
        """Spawn them all first (they open at the same time), then wait for each."""
        nodes = [self.spawn(name) for name in names]
        for node in nodes:
            node.url = node.process.wait_for_url()
        for node in nodes:
            client = node.client(timeout=5)
            try:
                wait_for(lambda c=client: c.request("GET", "/healthz")[0] == 200, what=node.name)
            finally:
                client.close()
        return nodes

    def kill(self, name: str) -> None:
        """SIGKILL, by pid, and wait until it is gone (a power cut, as far as others can tell)."""
        self.nodes[name].process.kill()

    def pause(self, name: str) -> None:
        """SIGSTOP: the node is frozen (no heartbeat, no append) but keeps its state."""
        os.kill(self.nodes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.nodes[name].pid, signal.SIGCONT)

    def stop(self, name: str) -> int:
        """SIGTERM (graceful) and the exit code."""
        return self.nodes[name].process.stop()

    def close(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGCONT)  # a paused node must be able to die
            node.process.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- asking ---------------------------------------------------------------------------

    def job(self, node: str, job_id: str, headers: dict[str, str] | None = None) -> dict:
        client = self.nodes[node].client(headers)
        try:
            status, body = client.json("GET", f"/v1/export/jobs/{job_id}")
        finally:
            client.close()
        assert status == 200, (node, job_id, status, body)
        return body

    def wait_job(
        self,
        node: str,
        job_id: str,
        done: Callable[[dict], bool] = lambda job: job["status"] in TERMINAL,
        timeout: float = DEADLINE,
    ) -> dict:
        """The job as `node` answers it, once `done` holds for it."""

        def check() -> dict | None:
            job = self.job(node, job_id)
            return job if done(job) else None

        return wait_for(check, timeout, f"job {job_id} on node {node}")

    def events(self, node: str, job_id: str) -> list[dict]:
        client = self.nodes[node].client()
        try:
            status, body = client.json("GET", f"/v1/export/jobs/{job_id}/events")
        finally:
            client.close()
        assert status == 200, (status, body)
        return body["events"]
