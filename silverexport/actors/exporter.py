"""ExportActor: runs one job's export in its own thread and reports to the supervisor."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka

from ..errors import ExportStorageError
from ..model import JobView
from ..silver.port import SilverBackend
from ..silver.writers import ExportCancelled, Filters, export_to_file
from ..storage import ExportStorage, ExportWriter
from . import files
from .messages import Done, Failed, Progress, Run

log = logging.getLogger(__name__)

ExportFn = Callable[..., Any]


class ExportActor(pykka.ThreadingActor):
    """One attempt of one job. Thin: the writer does the work, the supervisor the bookkeeping.

    Cancellation arrives as a threading.Event rather than a message, because this actor's
    mailbox is not read while the export runs; the writer checks it between batches.
    """

    # An embedder's process must exit even if this system is never closed: an export left
    # half done by the exit is recovered as after a crash (see exit_close.py).
    use_daemon_thread = True

    def __init__(
        self,
        *,
        supervisor: pykka.ActorRef,
        job: JobView,
        attempt: int,
        store_path: Path | SilverBackend,
        storage: ExportStorage,
        max_records: int,
        cancel: threading.Event,
        progress_interval: float,
        export_fn: ExportFn | None = None,
    ):
        super().__init__()
        self.supervisor = supervisor
        self.job = job
        self.attempt = attempt
        self.store_path = store_path
        self.storage = storage
        self.max_records = max_records
        self.cancel = cancel
        self.progress_interval = progress_interval
        self.export_fn = export_fn or export_to_file

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Run):
            try:
                self._run()
            finally:
                self.stop()
        return None

    def _report(self, message: Any) -> None:
        try:
            self.supervisor.tell(message)
        except pykka.ActorDeadError:
            log.warning("supervisor gone; job %s outcome left to recovery", self.job.job_id)

    def _run(self) -> None:
        job = self.job
        job_id = job.job_id
        name = files.final_name(job_id, self.attempt, job.extension)  # this attempt's alone
        last_report = time.monotonic()

        def on_progress(rows: int) -> None:
            nonlocal last_report
            now = time.monotonic()
            if now - last_report >= self.progress_interval:
                last_report = now
                self._report(Progress(job_id, self.attempt, rows))

        filters = job.filters
        writer = None
        try:
            writer = _LazyWriter(self.storage, name, self.attempt)
            result = self.export_fn(
                self.store_path,
                job.dataset,
                job.format,
                writer,
                filters=Filters(
                    target_id=filters.get("target_id"),
                    network=filters.get("network"),
                    from_=filters.get("from"),
                    to=filters.get("to"),
                ),
                limit=self.max_records if job.limit is None else min(job.limit, self.max_records),
                compression=job.compression,
                should_stop=self.cancel.is_set,
                on_progress=on_progress,
            )
            writer.commit()  # visible under `name` only now, whole (and durable)
        except ExportCancelled:
            _abort(writer)
            self._report(Failed(job_id, self.attempt, "cancelled", cancelled=True))
            return
        except Exception as e:  # reported, never swallowed: the job gets JobFailed
            if isinstance(e, ExportStorageError):  # the store's fault, said in one line
                log.warning("export of job %s (attempt %d) failed: %s", job_id, self.attempt, e)
            else:
                log.exception("export of job %s (attempt %d) failed", job_id, self.attempt)
            # abort never raises: an unwritable directory refuses the unlink too, and that
            # must not stop the report (the job would stay running, holding its slot).
            _abort(writer)
            self._report(Failed(job_id, self.attempt, _describe(e)))
            return
        self._report(
            Done(
                job_id,
                self.attempt,
                result.rows,
                result.bytes,
                result.sha256,
                result.truncated,
                name,
            )
        )


class _LazyWriter:
    """The attempt's ExportWriter, opened at the first byte rather than before the export
    starts: an export cancelled or failing before it writes leaves not even a partial."""

    def __init__(self, storage: ExportStorage, key: str, attempt: int):
        self.storage, self.key, self.attempt = storage, key, attempt
        self._writer: ExportWriter | None = None

    def _open(self) -> ExportWriter:
        if self._writer is None:
            self._writer = self.storage.open_writer(self.key, self.attempt)
        return self._writer

    def write(self, data: bytes) -> int:
        return self._open().write(data)

    def sync(self) -> None:
        sync = getattr(self._writer, "sync", None)
        if sync is not None:
            sync()

    def commit(self) -> None:
        self._open().commit()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


def _abort(writer: ExportWriter | None) -> None:
    """Leave nothing of this attempt; what a refusing store keeps, the sweep removes."""
    if writer is not None:
        try:
            writer.abort()
        except Exception:
            log.warning("could not abort the write of %s; a sweep will", writer.key)


def _describe(error: BaseException) -> str:
    """A readable one-line reason for the client; the traceback stays in the server log."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"export failed: {text}" if text else f"export failed: {type(error).__name__}"
