"""Shared pieces for actor-system tests: rows to export, open systems, gated writers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from silverexport.silver.writers import export_to_file

WAIT = 30.0


def transfer_rows(n: int, *, target: str = "t1", start: int = 0) -> list[dict]:
    return [
        {
            "target_id": target,
            "network": "ethereum" if i % 2 else "arbitrum",
            "block_number": 1000 + i,
            "block_time": 1_700_000_000_000 + i * 1000,
            "tx_hash": f"0x{i:064x}",
            "log_index": i % 7,
            "token_address": "0x" + "ab" * 20,
            "token_symbol": None if i % 5 == 0 else 'US"D, C\n',
            "from_address": "0x" + "11" * 20,
            "to_address": "0x" + "22" * 20,
            "amount": f"{i}.000000000000000001",
            "direction": "in" if i % 2 else "out",
        }
        for i in range(start, start + n)
    ]


def wait_until(predicate: Callable[[], object], timeout: float = WAIT, what: str = "condition"):
    """Poll with a deadline (the thing waited for happens in another thread or process)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class GatedWriter:
    """The real writer, held at its first batch until the test opens the gate.

    It lets a test catch a job deterministically *while* it runs.
    """

    def __init__(self):
        self.started = threading.Event()
        self.gate = threading.Event()
        self.calls = 0

    def __call__(self, *args, should_stop, **kwargs):
        self.calls += 1

        def stop() -> bool:
            self.started.set()
            while not self.gate.is_set():
                if should_stop():
                    return True
                self.gate.wait(0.01)
            return should_stop()

        return export_to_file(*args, should_stop=stop, **kwargs, batch_size=1)
