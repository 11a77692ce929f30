"""Liveness by flock: each process holds an exclusive lock on its own file under owners/.

For processes that share one disk (the SQLite event log lives on it). A job started by a
process whose lock can be taken was orphaned by a crash and may be recovered by anyone; the
kernel drops the lock when the process dies, however it dies. Useless across machines: there
the lease in the database (postgres_lease.py) answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from .port import NodeIdInUse


class FlockLiveness:
    """This process's identity in the log, proven alive by a held flock."""

    def __init__(self, owners_dir: Path, node_id: str):
        owners_dir.mkdir(parents=True, exist_ok=True)
        self.dir = owners_dir
        self._owner_id = node_id
        self.path = owners_dir / f"{node_id}.lock"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NodeIdInUse(
                f"SILVEREXPORT_NODE_ID: node {node_id!r} is already running on this data dir"
            ) from None
        self._fd: int | None = fd

    @property
    def owner_id(self) -> str:
        return self._owner_id

    def is_alive(self, owner_id: str | None) -> bool:
        """True while the process that took `owner_id` holds its lock."""
        if owner_id is None:
            return False
        if owner_id == self._owner_id:
            return self._fd is not None
        path = self.dir / f"{owner_id}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except (FileNotFoundError, ValueError, OSError):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            # Dead owner: tidy its file away (another process may do the same).
            fcntl.flock(fd, fcntl.LOCK_UN)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return False
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
