"""Real storage faults for the reliability tests: unwritable directories, small filesystems,
and the checks every fault shares (a clear failure, no file left, the system still serving)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from silverexport import ExportRequest, JobStatus, JobView
from silverexport.silver.writers import export_to_file
from silverexport.system import ExportSystem

IS_ROOT = os.geteuid() == 0


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[str]:
    """Make `directory` refuse new entries, renames and unlinks; yields the expected cause.

    Permissions (0o500) do that for an ordinary user; root ignores them, so as root the
    directory is made immutable instead (chattr +i), which the kernel enforces for root too.
    """
    if not IS_ROOT:
        directory.chmod(0o500)
        try:
            yield "Permission denied"
        finally:
            directory.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root, where permissions do not stop writes, and no chattr")
    done = _run("chattr", "+i", str(directory))
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i is refused here: {done.stderr.strip()}")
    try:
        yield "Operation not permitted"
    finally:
        _run("chattr", "-i", str(directory))


@contextlib.contextmanager
def tmpfs(mountpoint: Path, *, size: str, readonly: bool = False) -> Iterator[None]:
    """A small real tmpfs on `mountpoint` for the block (skips where mounting is refused)."""
    if not IS_ROOT or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    options = f"size={size},mode=0755" + (",ro" if readonly else "")
    done = _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint))
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is refused here: {done.stderr.strip()}")
    try:
        yield
    finally:
        # Lazy: a file the system still holds open must not leave the mount behind.
        _run("umount", "-l", str(mountpoint))


def remount(mountpoint: Path, options: str) -> None:
    done = _run("mount", "-o", f"remount,{options}", str(mountpoint))
    assert done.returncode == 0, done.stderr


def job_files(system: ExportSystem, job_id: str) -> list[str]:
    return sorted(
        p.name for p in system.settings.exports_dir.iterdir() if p.name.startswith(job_id)
    )


def assert_failed_cleanly(system: ExportSystem, view: JobView, *causes: str) -> None:
    """JobFailed with a one-line message naming the cause, and no file of the job left."""
    assert view.status is JobStatus.FAILED, view
    assert view.error and view.error.startswith("export failed: "), view.error
    assert any(cause in view.error for cause in causes), view.error
    assert "\n" not in view.error and "Traceback" not in view.error
    assert view.download_url is None and view.expires_at is not None
    assert job_files(system, view.job_id) == []
    last = system.events(view.job_id)[-1]
    assert last.type == "JobFailed" and last.event.will_retry is False


def assert_serving(system: ExportSystem, *known: str) -> None:
    """Status, list and submit still answer (the submitted job is left to run)."""
    for job_id in known:
        assert system.status(job_id).job_id == job_id
    listed = {v.job_id for v in system.list(limit=500)[0]}
    assert set(known) <= listed
    probe = system.submit(ExportRequest(dataset="hl_funding", format="csv"), tenant="probe")
    assert system.status(probe.job_id).job_id == probe.job_id


def assert_completes(system: ExportSystem, rows: int, **request) -> JobView:
    """A later job succeeds: completed, its file whole and equal to a direct export."""
    import hashlib

    request.setdefault("dataset", "token_transfers")
    request.setdefault("format", "csv")
    done = system.wait(system.submit(ExportRequest(**request)).job_id, timeout=30)
    assert done.status is JobStatus.COMPLETED, done
    assert done.rows == rows
    path = system.file_path(done)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done.sha256
    assert job_files(system, done.job_id) == [path.name]
    return done


def _partial_size(writer) -> int:
    """Bytes the job's ExportWriter has put in its partial file so far (a directory store)."""
    storage = writer.storage
    (partial,) = storage.list_partials(writer.key)
    return (storage.directory / partial.ref).stat().st_size


class FullDisk:
    """The real writer, failing with ENOSPC part-way through the file (after 50 rows, five
    batches) while `full` is set — as a write() to a full filesystem does."""

    def __init__(self) -> None:
        self.full = True
        self.part_size_at_failure: int | None = None

    def __call__(self, store_path, dataset, fmt, path, *, on_progress=None, **kwargs):
        def progress(rows: int) -> None:
            if self.full and rows >= 50:
                self.part_size_at_failure = _partial_size(path)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            if on_progress is not None:
                on_progress(rows)

        return export_to_file(
            store_path, dataset, fmt, path, on_progress=progress, batch_size=10, **kwargs
        )
