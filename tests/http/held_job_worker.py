"""Another process on the same data dir: submits one job, prints its id, and runs it only when
a line arrives on stdin; then prints the job's final status.

    python -m tests.http.held_job_worker DATA_DIR
"""

from __future__ import annotations

import sys

from silverexport import ExportRequest, ExportSystem
from silverexport.silver.writers import export_to_file


def held(*args, **kwargs):
    sys.stdin.readline()
    return export_to_file(*args, **kwargs)


def main(data_dir: str) -> None:
    with ExportSystem.open(data_dir, export_fn=held) as system:
        system.store.ingest("token_transfers", [])
        job = system.submit(ExportRequest(dataset="token_transfers", format="csv"), tenant="alice")
        print(job.job_id, flush=True)
        print(system.wait(job.job_id, timeout=120).status, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
