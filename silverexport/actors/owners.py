"""Which processes are alive: each running system holds an exclusive lock on its own file.

A job started by a process whose lock can be taken was orphaned by a crash and may be
recovered by anyone; the kernel drops the lock when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
from pathlib import Path


class OwnerLock:
    """This process's identity in the log, proven alive by a held flock."""

    def __init__(self, owners_dir: Path):
        owners_dir.mkdir(parents=True, exist_ok=True)
        self.dir = owners_dir
        self.owner_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.path = owners_dir / f"{self.owner_id}.lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def is_alive(self, owner_id: str | None) -> bool:
        """True while the process that took `owner_id` holds its lock."""
        if owner_id is None:
            return False
        if owner_id == self.owner_id:
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
