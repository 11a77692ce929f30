"""Where a job's files live, and making them appear atomically and durably."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def final_name(job_id: str, extension: str) -> str:
    return f"{job_id}.{extension}"


def part_path(exports_dir: Path, job_id: str, attempt: int) -> Path:
    """Each attempt writes its own temporary file, never visible under the final name."""
    return exports_dir / f"{job_id}.attempt{attempt}.part"


def publish(part: Path, final: Path) -> None:
    """Rename a synced temporary file into place and sync the directory entry.

    If the directory cannot be synced the rename may not survive a crash, so the file is not
    published after all: it is taken away again and the error raised.
    """
    os.replace(part, final)
    try:
        fsync_dir(final.parent)
    except OSError:
        discard(final)
        raise


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_parts(exports_dir: Path, job_id: str) -> None:
    """Remove every attempt's temporary file of a job; never raises (see `discard`)."""
    try:
        parts = list(exports_dir.glob(f"{job_id}.attempt*.part"))
    except OSError as e:
        log.warning("could not list %s for parts of job %s: %s", exports_dir, job_id, e)
        return
    for part in parts:
        discard(part)


def remove(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def discard(path: Path | None) -> bool:
    """Remove a file that must not stay, on a path where failing is no reason to stop.

    Used on the way out of a failure (a read-only or immutable export directory refuses the
    unlink as well): the job's outcome must still be reported, and the supervisor's sweep
    removes the file once the directory can be written again. False if the file is not gone.
    """
    try:
        remove(path)
        return True
    except OSError as e:
        log.warning("could not remove %s (will retry on a later sweep): %s", path, e)
        return False
