"""Memory stays bounded by the part size, not the file size, writing and reading.

Python's own allocations are traced (tracemalloc), so the bound is exact and does not depend
on timing: the file is many times larger than what may be held at once.
"""

from __future__ import annotations

import tracemalloc

from silverexport.storage import ExportStorage, LocalStorage

from .conftest import PART_BYTES

FILE_BYTES = 8 * PART_BYTES  # 40 MiB
BLOCK = bytes(range(256)) * 4096  # 1 MiB, made before tracing starts


def traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_write_and_read_hold_a_bounded_amount(storage: ExportStorage):
    # S3: up to max_in_flight (2) parts on the way plus the one filling, and its joined copy
    bound = 5 * PART_BYTES if not isinstance(storage, LocalStorage) else 2 << 20

    def write() -> None:
        writer = storage.open_writer("mem.csv")
        for _ in range(FILE_BYTES // len(BLOCK)):
            writer.write(BLOCK)
        writer.commit()

    peak = traced_peak(write)
    assert peak < bound < FILE_BYTES / 1.5
    assert storage.size("mem.csv") == FILE_BYTES

    seen = 0

    def read() -> None:
        nonlocal seen
        for chunk in storage.read("mem.csv", 1000, FILE_BYTES - 2000):
            seen += len(chunk)

    assert traced_peak(read) < 4 << 20
    assert seen == FILE_BYTES - 2000
