"""The embedded-ingestion side of the concurrent-writers test: one process that shares the data
dir with the test's system, ingests Silver rows inside ingestion slots, submits export jobs and
cancels some of the other side's, all appending to the same event log.

usage: python -m tests.reliability.concurrent_writer_worker DATA_DIR SECONDS OUT_JSON
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from silverexport import ExportRequest, ExportSystem, JobStatus
from silverexport.errors import ConflictError
from tests.actors.conftest import transfer_rows

BATCH = 25  # rows per ingested batch; every batch belongs to one target
TARGETS = ("t0", "t1", "t2", "t3")
OUTSTANDING = 6  # jobs a side keeps unfinished before it waits for its oldest
TIMEOUT = 120.0


class Side:
    """What one side does in a loop; the test process runs the same loop as the server."""

    def __init__(self, system: ExportSystem, tenant: str, other: str, *, ingests: bool):
        self.system = system
        self.tenant = tenant
        self.other = other
        self.ingests = ingests
        self.job_ids: list[str] = []
        self.open: list[str] = []
        self.figures = {
            "submitted": 0,
            "ingested_rows": 0,
            "ingest_batches": 0,
            "cancels": 0,
            "cancel_conflicts": 0,
        }

    def step(self, i: int) -> None:
        if self.ingests:
            rows = transfer_rows(BATCH, target=TARGETS[i % len(TARGETS)], start=i * BATCH)
            with self.system.slots.ingestion(timeout=TIMEOUT):
                self.system.store.ingest("token_transfers", rows)
            self.figures["ingested_rows"] += BATCH
            self.figures["ingest_batches"] += 1
        request = ExportRequest(
            dataset="token_transfers",
            format=("csv", "jsonl")[i % 2],
            target_id=TARGETS[(i * 3) % len(TARGETS)],
            compression="gzip" if i % 7 == 3 else None,
        )
        job = self.system.submit(request, tenant=self.tenant)
        self.job_ids.append(job.job_id)
        self.open.append(job.job_id)
        self.figures["submitted"] += 1
        if i % 5 == 4:
            self.cancel_one_of_the_other_side()
        while len(self.open) > OUTSTANDING:
            self.system.wait(self.open.pop(0), timeout=TIMEOUT)

    def cancel_one_of_the_other_side(self) -> None:
        for status in (JobStatus.RUNNING, JobStatus.QUEUED):
            views, _ = self.system.list(tenant=self.other, status=status, limit=1)
            if views:
                try:
                    self.system.cancel(views[0].job_id)
                    self.figures["cancels"] += 1
                except ConflictError:  # it finished (or was cancelled) in the meantime
                    self.figures["cancel_conflicts"] += 1
                return

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            self.step(i)
            i += 1
        for job_id in self.open:
            self.system.wait(job_id, timeout=TIMEOUT)
        self.open.clear()

    def report(self) -> dict:
        return {
            **self.figures,
            "owner": self.system.owner.owner_id,
            "job_ids": self.job_ids,
        }


def main() -> None:
    data_dir, seconds, out = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
    with ExportSystem.open(
        data_dir,
        max_concurrent_exports=2,
        catch_up_interval_seconds=0.05,
        progress_interval_seconds=0.0,
    ) as system:
        side = Side(system, "ingest", "server", ingests=True)
        print("READY", flush=True)
        side.run(seconds)
        out.write_bytes(orjson.dumps(side.report()))
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
