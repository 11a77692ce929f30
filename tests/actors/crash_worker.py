"""A process that the crash tests SIGKILL: it submits jobs, then stalls mid-export.

usage: crash_worker.py DATA_DIR submit|resume [STALL_ROWS]

STALL_ROWS (default 1): the writer stalls at the first progress report with at least that many
rows, so a test can let enough bytes out first (a multipart upload with parts in S3).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from silverexport import ExportRequest, ExportSystem
from silverexport.silver.writers import export_to_file

STALL = threading.Event()  # never set: the writer waits here until the process is killed
PARENT = os.getppid()
_OUT = threading.Lock()


def say(line: str) -> None:
    """One whole line per write: the actor and main threads both report."""
    with _OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def stall() -> None:
    """Wait to be killed; leave on our own if the test process that started us is gone."""
    while os.getppid() == PARENT:
        STALL.wait(0.5)
    os._exit(3)


STALL_ROWS = int(sys.argv[3]) if len(sys.argv) > 3 else 1


def stalling_writer(*args, on_progress=None, **kwargs):
    def progress(rows: int) -> None:
        if rows >= STALL_ROWS:
            say(f"MIDWAY {rows}")
            stall()

    return export_to_file(*args, on_progress=progress, batch_size=10, **kwargs)


def main() -> None:
    data_dir, mode = Path(sys.argv[1]), sys.argv[2]
    system = ExportSystem.open(
        data_dir,
        max_concurrent_exports=1,
        export_fn=stalling_writer,
        catch_up_interval_seconds=0.05,
    )
    if mode == "submit":
        for fmt in ("csv", "jsonl", "parquet"):
            job = system.submit(
                ExportRequest(dataset="token_transfers", format=fmt, target_id="t1")
            )
            say(f"ACCEPTED {job.job_id}")
    say("READY")
    stall()


if __name__ == "__main__":
    main()
