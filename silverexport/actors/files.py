"""Where a job's files live, and making them appear atomically and durably."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def final_name(job_id: str, extension: str) -> str:
    return f"{job_id}.{extension}"


def part_path(exports_dir: Path, job_id: str, attempt: int) -> Path:
    """Each attempt writes its own temporary file, never visible under the final name."""
    return exports_dir / f"{job_id}.attempt{attempt}.part"


def publish(part: Path, final: Path) -> None:
    """Rename a synced temporary file into place and sync the directory entry."""
    os.replace(part, final)
    fsync_dir(final.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_parts(exports_dir: Path, job_id: str) -> None:
    for part in exports_dir.glob(f"{job_id}.attempt*.part"):
        with contextlib.suppress(FileNotFoundError):
            part.unlink()


def remove(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
