"""The ingestion process of the load test: it embeds ExportSystem on the server's data dir and
writes Silver rows in batches, each inside an ingestion slot, until its stdin closes; then it
writes what it did (and every error it met) as JSON.

usage: python -m tests.reliability.load_ingest_worker DATA_DIR OUT_JSON
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import orjson

from silverexport import ExportSystem
from tests.actors.conftest import transfer_rows

BATCH = 200
TARGETS = ("t0", "t1", "t2", "t3")
FIRST_ID = 10_000_000  # above the ids the test ingested before the server started


def main() -> None:
    data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    figures = {"batches": 0, "rows": 0, "errors": [], "slot_waits_max_ms": 0.0}
    with ExportSystem.open(data_dir, catch_up_interval_seconds=0.2) as system:
        print("READY", flush=True)
        i = 0
        while not stop.is_set():
            rows = transfer_rows(
                BATCH, target=TARGETS[i % len(TARGETS)], start=FIRST_ID + i * BATCH
            )
            asked = time.monotonic()
            try:
                with system.slots.ingestion(timeout=30):
                    waited = (time.monotonic() - asked) * 1000
                    figures["slot_waits_max_ms"] = max(figures["slot_waits_max_ms"], waited)
                    system.store.ingest("token_transfers", rows)
            except Exception as e:  # reported to the test, which fails on any
                figures["errors"].append(f"{type(e).__name__}: {e}")
                if len(figures["errors"]) > 20:
                    break
            else:
                figures["batches"] += 1
                figures["rows"] += BATCH
            i += 1
    out.write_bytes(orjson.dumps(figures))
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
