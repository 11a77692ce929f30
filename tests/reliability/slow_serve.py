"""`python -m tests.reliability.slow_serve serve ...`: the real command line, with every export
slowed down to a known pace, so that a test can kill, pause or cancel a node *while* it runs a
job rather than hoping to catch it.

`MULTINODE_BATCH_ROWS` (default 100) rows per batch and `MULTINODE_BATCH_SECONDS` (default 0.1)
of sleep after each batch. Only the pace changes: the rows, the bytes and the file are the real
writer's, so the sha256 is the one an unslowed export gives.
"""

from __future__ import annotations

import os
import sys
import time

from silverexport.actors import exporter
from silverexport.silver.writers import export_to_file

BATCH_ROWS = int(os.environ.get("MULTINODE_BATCH_ROWS", "100"))
BATCH_SECONDS = float(os.environ.get("MULTINODE_BATCH_SECONDS", "0.1"))


def slow_export(*args, on_progress=None, **kwargs):
    def paced(rows: int) -> None:
        time.sleep(BATCH_SECONDS)  # the pace of the export itself, not a wait in a test
        if on_progress is not None:
            on_progress(rows)

    kwargs["batch_size"] = BATCH_ROWS
    return export_to_file(*args, on_progress=paced, **kwargs)


def main() -> int:
    exporter.export_to_file = slow_export  # what ExportActor calls when given no export_fn
    from silverexport.__main__ import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
