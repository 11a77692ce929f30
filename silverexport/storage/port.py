"""The one interface the service uses for export files, whichever store holds them.

A file is written once, from start to end, by one writer; nobody sees it under its final key
until `commit()` returns, and `abort()` (or a crash, followed by a sweep) leaves nothing. After
that it is only read (whole or by range), listed and deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import ExportStorageError

READ_CHUNK_BYTES = 1 << 20

# Every operation of every adapter raises ExportStorageError (one of the project's errors, a
# 503 at the HTTP edge, one line from the CLI) when the store refuses or fails it; a missing
# file is not a failure: that is None, False or FileNotFoundError, as each method says.
__all__ = ["READ_CHUNK_BYTES", "ExportStorage", "ExportStorageError", "ExportWriter", "Partial"]


@dataclass(frozen=True, slots=True)
class Partial:
    """A write in progress (or left behind by a crash) that is not visible under `key`."""

    key: str  # the final key it would become
    ref: str  # the adapter's own handle: a temporary file name, a multipart upload id
    started: float  # unix seconds


@runtime_checkable
class ExportWriter(Protocol):
    """Takes a file's bytes as they are produced; memory stays bounded whatever the size."""

    key: str

    def write(self, data: bytes) -> int: ...

    def commit(self) -> None:
        """Make the whole file visible under `key`, durably; raises if it cannot."""

    def abort(self) -> None:
        """Leave nothing behind, neither under `key` nor as a partial; never raises."""


@runtime_checkable
class ExportStorage(Protocol):
    """Where export files live: a local or shared directory, or an S3 bucket."""

    url: str

    def open_writer(self, key: str, attempt: int = 1) -> ExportWriter:
        """A writer for `key`; each attempt has its own partial, never seen under `key`."""

    def size(self, key: str) -> int | None:
        """The committed file's size in bytes, or None if there is none."""

    def read(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Chunks of `length` bytes from `start` (to the end if None), never the whole file
        at once; blocking, so async callers iterate it off the event loop (`stream_range`).
        Raises FileNotFoundError if there is no such file, and ExportStorageError (while iterating)
        if the store fails before the last byte: the chunks never just stop short."""

    def delete(self, key: str) -> bool:
        """Remove a committed file; False if there was none."""

    def list(self, prefix: str = "") -> list[str]:
        """The committed keys starting with `prefix` (for sweeps)."""

    def list_partials(self, prefix: str = "") -> list[Partial]:
        """Writes in progress or left by crashes, whose key starts with `prefix`."""

    def drop_partial(self, partial: Partial) -> None:
        """Abort a write in progress or left behind (a temporary file, a multipart upload)."""

    def check(self) -> None:
        """Raise ExportStorageError if the store cannot be reached or written (at start, and
        for /healthz: cheap, and bounded in time)."""

    def close(self) -> None: ...
