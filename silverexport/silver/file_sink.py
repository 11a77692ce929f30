"""Where an export's bytes go: a sink that hashes, counts and syncs them on their way to the
target (with an optional copy), and a writer thread that lets hashing, gzip and the disk
overlap the rendering of the next batch. Shared by the SQLite and PostgreSQL exports, which
differ only in how they render the rows.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

GZIP_LEVEL = 6
SYNC_EVERY = 16 << 20  # bytes written between syncs (see HashingSink)
# The export's logger, as before these classes had a module of their own.
log = logging.getLogger("silverexport.silver.writers")


class HashingSink:
    """A file-like target that counts and hashes the bytes that reach the disk, and syncs
    them every SYNC_EVERY bytes: the disk then works while SQLite builds the next batches,
    and the final fsync finds little left to do."""

    def __init__(self, raw: Any, copy: Any = None):
        self.raw, self.copy = raw, copy
        self.sha = hashlib.sha256()
        self.bytes = self.synced = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.bytes += len(data)
        self.raw.write(data)
        if self.copy is not None:
            self._copy(data)
        if self.bytes - self.synced >= SYNC_EVERY:
            self.raw.sync()
            self.synced = self.bytes
        return len(data)

    def _copy(self, data: bytes) -> None:
        """The copy is a convenience: failing to write it drops it, never the export."""
        try:
            view = memoryview(data)
            while view:
                view = view[self.copy.write(view) :]
        except OSError as e:
            log.warning("copy of the export dropped: %s", e.strerror or e)
            self.copy = None

    def flush(self) -> None:
        pass  # the target's owner makes the file durable (commit, or open_target for a path)


class BackgroundWriter:
    """Writes batches on a second thread, so that hashing, gzip and the disk overlap SQLite
    building the next batch (all of them release the GIL). Two batches in flight at most,
    so memory stays flat; a write error is raised at the next `put` or at `close`."""

    def __init__(self, out: Any):
        self.out = out
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="silver-export-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.error is None:  # after a failure, keep draining so `put` never blocks
                try:
                    self.out.write(data)
                except BaseException as e:
                    self.error = e

    def put(self, data: bytes) -> None:
        self._raise()
        self.queue.put(data)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def open_copy(copy_to: str | Path | None) -> Any:
    """The unbuffered copy target, or None when there is none or it cannot be opened."""
    if copy_to is None:
        return nullcontext()
    try:
        return open(copy_to, "wb", buffering=0)
    except OSError as e:
        log.warning("no copy of the export to %s: %s", copy_to, e.strerror or e)
        return nullcontext()
