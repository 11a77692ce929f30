"""Export files in a directory: the data dir's exports/, or one every node mounts (NFS).

A write goes to `<key>.attempt<n>.part` in the same directory, is fsynced, renamed over the
final name and the directory fsynced, so a crash leaves either the whole file or a partial
that the sweep removes.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import ExportStorageError
from .failure import failure
from .port import READ_CHUNK_BYTES, Partial

_datasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
_PARTIAL = re.compile(r"^(?P<key>.+)\.attempt(?P<attempt>\d+)\.part$")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalWriter:
    """Every OSError (a full disk, a directory that refuses writes) is an ExportStorageError."""

    def __init__(self, directory: Path, key: str, attempt: int, url: str):
        self.key = key
        self.url = url
        self.final = directory / key
        self.part = directory / f"{key}.attempt{attempt}.part"
        try:
            self._file: BinaryIO | None = open(self.part, "wb")  # noqa: SIM115 (closed in commit/abort)
        except OSError as e:
            raise failure(url, f"start writing {key}", e) from e

    def write(self, data: bytes) -> int:
        if self._file is None:
            raise ExportStorageError(f"writer for {self.key} is already closed")
        try:
            return self._file.write(data)
        except OSError as e:
            raise failure(self.url, f"write {self.key}", e) from e

    def sync(self) -> None:
        """Push what is written so far to the disk, so the final fsync has little left."""
        if self._file is not None:
            try:
                self._file.flush()
                _datasync(self._file.fileno())
            except OSError as e:
                raise failure(self.url, f"write {self.key}", e) from e

    def commit(self) -> None:
        try:
            self._commit()
        except OSError as e:
            raise failure(self.url, f"finish writing {self.key}", e) from e

    def _commit(self) -> None:
        f = self._file
        if f is None:
            raise ExportStorageError(f"writer for {self.key} is already closed")
        self._file = None
        try:
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(self.part, self.final)
        except BaseException:
            with contextlib.suppress(OSError):
                f.close()
            _unlink(self.part)
            raise
        try:
            fsync_dir(self.final.parent)
        except OSError:
            # the rename might not survive a crash: not published after all
            _unlink(self.final)
            raise

    def abort(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()
            _unlink(self.part)

    def __enter__(self) -> LocalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False  # a later sweep retries


class LocalStorage:
    """The `file://` adapter. A missing file is None, False or FileNotFoundError as the port
    says; any other OSError is an ExportStorageError naming the store and what failed."""

    def __init__(self, directory: Path, *, read_chunk_bytes: int = READ_CHUNK_BYTES):
        self.directory = Path(directory)
        self.url = self.directory.absolute().as_uri()
        self.read_chunk_bytes = read_chunk_bytes

    def path(self, key: str) -> Path:
        """Where a committed file lies (local only: for sendfile and for tests)."""
        return self.directory / _checked(key)

    def open_writer(self, key: str, attempt: int = 1) -> LocalWriter:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise failure(self.url, f"start writing {key}", e) from e
        return LocalWriter(self.directory, _checked(key), attempt, self.url)

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None
        except OSError as e:
            raise failure(self.url, f"read {key}", e) from e

    def read(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        try:
            f = open(self.path(key), "rb")  # noqa: SIM115 (closed by the generator)
        except FileNotFoundError:
            raise
        except OSError as e:
            raise failure(self.url, f"read {key}", e) from e
        return self._chunks(f, key, start, length)

    def _chunks(self, f: BinaryIO, key: str, start: int, length: int | None) -> Iterator[bytes]:
        try:
            yield from self._read_from(f, start, length)
        except OSError as e:
            raise failure(self.url, f"read {key}", e) from e

    def _read_from(self, f: BinaryIO, start: int, length: int | None) -> Iterator[bytes]:
        with f:
            f.seek(start)
            left = length
            while left is None or left > 0:
                want = self.read_chunk_bytes if left is None else min(left, self.read_chunk_bytes)
                chunk = f.read(want)
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False
        except OSError as e:
            raise failure(self.url, f"delete {key}", e) from e

    def list(self, prefix: str = "") -> list[str]:
        return sorted(
            name
            for name in self._names()
            if name.startswith(prefix) and not _PARTIAL.match(name) and not name.startswith(".")
        )

    def list_partials(self, prefix: str = "") -> list[Partial]:
        found = []
        for name in self._names():
            m = _PARTIAL.match(name)
            if m and m["key"].startswith(prefix):
                try:
                    started = (self.directory / name).stat().st_mtime
                except FileNotFoundError:
                    continue
                except OSError as e:
                    raise failure(self.url, "list the writes in progress", e) from e
                found.append(Partial(m["key"], name, started))
        return sorted(found, key=lambda p: p.ref)

    def drop_partial(self, partial: Partial) -> None:
        if not _PARTIAL.match(partial.ref) or "/" in partial.ref:
            raise ExportStorageError(f"not a partial of this store: {partial.ref!r}")
        try:
            (self.directory / partial.ref).unlink(missing_ok=True)
        except OSError as e:
            raise failure(self.url, f"remove {partial.ref} (a later sweep retries)", e) from e

    def _names(self) -> list[str]:
        try:
            return [e.name for e in os.scandir(self.directory) if e.is_file()]
        except FileNotFoundError:
            return []
        except OSError as e:
            raise failure(self.url, "list its files", e) from e

    def check(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise ExportStorageError(
                f"cannot write export files in {self.directory}: {e.strerror or e}"
            ) from None

    def close(self) -> None:
        pass


def _checked(key: str) -> str:
    """Keys are plain file names: no directory parts, nothing that climbs out."""
    if not key or "/" in key or "\\" in key or key in (".", "..") or "\0" in key:
        raise ExportStorageError(f"not a valid export file key: {key!r}")
    return key
