"""A process that opens a system and ends without closing it, as a careless embedder might.

usage: exit_worker.py DATA_DIR midway|idle|raise|raise_in_with|fork

midway: submits a job whose export holds after its first batch (until the system is closed),
prints `MIDWAY <job id>`, and ends its main thread once a line arrives on stdin. idle: ends
once the system is open. raise: an exception escapes with the system open, no try/finally.
raise_in_with: the same exception escapes a `with ExportSystem.open(...)` block. fork: a
child forked with the system open ends (it has none of the system's threads), then this one.
"""

from __future__ import annotations

import os
import sys
import threading

from silverexport import ExportRequest, ExportSystem
from silverexport.silver.writers import export_to_file

MIDWAY = threading.Event()


def held_writer(*args, should_stop, on_progress=None, **kwargs):
    """The real writer, held after its first batch until the system stops it (close())."""

    def progress(rows: int) -> None:
        MIDWAY.set()
        while not should_stop():
            MIDWAY.wait(0.01)  # already set: a short pause between looks at the stop flag

    return export_to_file(
        *args, should_stop=should_stop, on_progress=progress, batch_size=10, **kwargs
    )


def main() -> None:
    data_dir, mode = sys.argv[1], sys.argv[2]
    if mode == "raise_in_with":
        with ExportSystem.open(data_dir):
            raise ValueError("boom")
    system = ExportSystem.open(
        data_dir, max_concurrent_exports=1, export_fn=held_writer, catch_up_interval_seconds=0.05
    )
    if mode == "raise":
        raise ValueError("boom")
    if mode == "fork":
        child = os.fork()
        if child == 0:
            return  # the child's main thread ends, its copy of the system open
        print(f"CHILD {os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])}", flush=True)
    if mode == "midway":
        job = system.submit(ExportRequest(dataset="token_transfers", format="csv"))
        if not MIDWAY.wait(30):
            raise SystemExit("the export never got past its first batch")
        print(f"MIDWAY {job.job_id}", flush=True)
        sys.stdin.readline()
    print("END", flush=True)  # the main thread ends here, the system still open


if __name__ == "__main__":
    main()
