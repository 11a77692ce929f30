"""Where an export's bytes go: the job's ExportWriter, or a plain path (tools, tests, benches).

The writers only `write`, and `sync` now and then so the disk works while the next batches
are built; committing (fsync, rename, or completing an upload) is the writer owner's job.
A path is the one case they finish themselves: opened, written and fsynced here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from ..storage import ExportWriter

_datasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync

Target = str | Path | ExportWriter


class _File:
    def __init__(self, raw: BinaryIO):
        self.raw = raw

    def write(self, data: Any) -> int:
        return self.raw.write(data)

    def sync(self) -> None:
        self.raw.flush()
        _datasync(self.raw.fileno())


class _Writer:
    def __init__(self, writer: ExportWriter):
        self.writer = writer
        self._sync = getattr(writer, "sync", None)  # local files have one; uploads do not

    def write(self, data: Any) -> int:
        return self.writer.write(data)

    def sync(self) -> None:
        if self._sync is not None:
            self._sync()


@contextmanager
def open_target(target: Target) -> Iterator[_File | _Writer]:
    """A sink with `write` and `sync`; a path is fsynced and closed when the block ends."""
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as raw:
            yield _File(raw)
            raw.flush()
            os.fsync(raw.fileno())
    else:
        target.write(b"")  # a writer opened lazily opens now, in this thread, as a path would
        yield _Writer(target)
