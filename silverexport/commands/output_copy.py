"""`export -o FILE`: FILE written as the export writes the job's file, not copied afterwards.

Copying the finished file was a second pass over every byte after the export (0.1-0.8 s for
a million rows). Instead the writer tees each byte into a temporary file next to FILE, and
once the job has completed with exactly those bytes (the size and sha256 the log records),
that file is renamed onto FILE: FILE is whole when it appears, and it is a file of its own,
so writing to it later never touches the job's file. Whenever that cannot hold (parquet, FILE
a device or a pipe, a copy that failed or came from another attempt) the job's file is copied.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ValidationError
from ..model import ExportFormat, JobView
from ..silver.writers import ExportResult, export_to_file


class OutputCopy:
    """The `-o FILE` of one export: a temporary file to tee into, then FILE."""

    def __init__(self, target: Path, fmt: ExportFormat):
        self.target = target
        self.temp: Path | None = None
        self.written: ExportResult | None = None
        if fmt is not ExportFormat.PARQUET and _replaceable(target):
            self.temp = _create_temp(target)

    def export_fn(self) -> Any:
        """The writer for the actor system: the usual one, teeing into the temporary file."""
        if self.temp is None:
            return None
        temp = self.temp

        def export(*args: Any, **kwargs: Any) -> ExportResult:
            self.written = None  # a retried attempt rewrites the copy from its start
            self.written = export_to_file(*args, copy_to=temp, **kwargs)
            return self.written

        return export

    def finish(
        self, view: JobView, path: Path | None, copy_out: Callable[[BinaryIO], None]
    ) -> None:
        """Put the completed job's bytes at FILE: the tee when it holds them, else a copy."""
        written = self.written
        try:
            if (
                self.temp is not None
                and written is not None
                and written.copied
                and (written.bytes, written.sha256) == (view.bytes, view.sha256)
            ):
                os.replace(self.temp, self.target)
                self.temp = None
                return
            self._copy(path, copy_out)
        except OSError as e:
            raise ValidationError(
                f"cannot write {self.target}: {e.strerror or e}", field="output"
            ) from e

    def _copy(self, path: Path | None, copy_out: Callable[[BinaryIO], None]) -> None:
        """The job's file copied to FILE. Into a temporary file renamed onto FILE when it can
        (a store failing mid-copy leaves FILE as it was, never half written); straight into
        FILE when that is a device or a pipe."""
        self.discard()  # a tee that did not hold the job's bytes
        if _replaceable(self.target):
            self.temp = _create_temp(self.target)
        into = self.temp or self.target
        if path is not None:
            shutil.copyfile(path, into)  # a local store: the kernel copies
        else:
            with open(into, "wb") as out:
                copy_out(out)
        if into != self.target:
            os.replace(into, self.target)
            self.temp = None

    def discard(self) -> None:
        """Remove the temporary file if it was not renamed onto FILE."""
        if self.temp is not None:
            with contextlib.suppress(OSError):
                self.temp.unlink()
            self.temp = None


def _replaceable(target: Path) -> bool:
    """Renaming onto FILE is what a copy would do only if FILE is absent or a plain file
    (not /dev/null, a pipe, or a link someone means us to write through)."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return stat.S_ISREG(mode) and os.stat(target).st_nlink == 1


def _create_temp(target: Path) -> Path | None:
    """A new hidden file beside FILE, with the permissions FILE has, or a new FILE would get."""
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = None
    for _ in range(8):
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError:
            return None  # the copy after the export says why, if it fails too
        try:
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return temp
    return None
