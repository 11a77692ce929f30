"""Writes part of a file through a store, says so, then waits to be SIGKILLed by the test."""

from __future__ import annotations

import sys
from pathlib import Path

from silverexport.storage import LocalStorage
from silverexport.storage.s3 import S3Storage

PART_BYTES = 5 << 20


def main() -> None:
    kind, where, endpoint, key = sys.argv[1:5]
    if kind == "file":
        store = LocalStorage(Path(where))
    else:
        store = S3Storage(
            where, "exports/", endpoint_url=endpoint, part_bytes=PART_BYTES, max_in_flight=2
        )
    writer = store.open_writer(key, attempt=1)
    block = b"x" * (1 << 20)
    for _ in range(3 * PART_BYTES // len(block)):
        writer.write(block)
    print("written", flush=True)
    sys.stdin.read()  # never returns: the test kills this process mid-upload


if __name__ == "__main__":
    main()
