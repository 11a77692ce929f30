"""Recording what export actors report: progress, then the attempt's outcome, in the log.

A mixin of JobSupervisor (it runs on the supervisor's thread and uses its parts), the finishing
half beside Launching's starting half. An outcome is recorded only for the attempt the log
says this process runs; a superseded attempt (cancelled, or taken over by another node) leaves
its file to the attempt that now runs. An outcome whose append failed is kept and retried on
the next Tick, never dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..errors import ConcurrencyError, StorageError
from ..events.types import Event, JobCompleted, JobFailed, JobProgressed
from ..model import JobStatus
from ..nodes import Liveness
from ..storage import ExportStorage
from . import files
from .job_book import RUNNING, JobBook
from .launching import Running
from .messages import Done, Failed, Progress
from .slots import Side, Slots

log = logging.getLogger(__name__)


class Outcomes:
    """What the finish path needs of its host (JobSupervisor sets all of these)."""

    book: JobBook
    slots: Slots
    owner: Liveness
    storage: ExportStorage
    running: dict[str, Running]
    pending: list[Any]
    shutting_down: bool
    _retention: Callable[[], float]
    _log_unreachable: Callable[[StorageError], None]

    def _progress(self, msg: Progress) -> None:
        state = self.book.active.get(msg.job_id)
        if state and state["status"] == RUNNING and state["attempts"] == msg.attempt:
            # On a conflict the job moved on elsewhere, and _changed has told the actor to stop.
            with contextlib.suppress(ConcurrencyError):
                self.book.append(msg.job_id, JobProgressed(rows=msg.rows))

    def _finish(self, msg: Done | Failed) -> None:
        running = self.running.get(msg.job_id)
        if running is not None and running.attempt == msg.attempt:
            del self.running[msg.job_id]
            self.slots.release(Side.EXPORT)
        if self.shutting_down and isinstance(msg, Failed) and msg.cancelled:
            return  # interrupted by close(): the job stays running and resumes on next start
        state = self.book.active.get(msg.job_id)
        ours = (
            state is not None
            and state["status"] == RUNNING
            and state["attempts"] == msg.attempt
            and state["owner"] == self.owner.owner_id
        )
        if isinstance(msg, Done):
            event: Event = JobCompleted(
                rows=msg.rows,
                bytes=msg.bytes,
                sha256=msg.sha256,
                truncated=msg.truncated,
                file_name=msg.file_name,
                retention_seconds=self._retention(),
            )
        elif msg.cancelled:
            return  # JobCancelled is already in the log; the actor removed its part file
        else:
            event = JobFailed(
                error=msg.error,
                attempt=msg.attempt,
                will_retry=False,
                retention_seconds=self._retention(),
            )
        if ours:
            try:
                self.book.append(msg.job_id, event)
                return
            except ConcurrencyError:
                pass
        # Superseded (cancelled, or recovered by another process): the file is not ours to keep.
        # The name is this attempt's alone (files.final_name), so removing it never touches
        # the file of the attempt that runs now or completed, whenever that one commits.
        if isinstance(msg, Done):
            state = self.book.get(msg.job_id)
            kept = (
                state is not None
                and state["status"] == JobStatus.COMPLETED.value
                and state["file_name"] == msg.file_name
            )
            if not kept:
                files.discard(self.storage, msg.file_name)

    def _retry_pending(self) -> None:
        """Record the outcomes whose append failed before. One that fails again is kept for
        the next Tick, and does not stop the others (nor the rest of the Tick)."""
        pending, self.pending = self.pending, []
        for msg in pending:
            try:
                self._finish(msg)
            except StorageError as e:
                self._log_unreachable(e)
                self.pending.append(msg)
            except Exception:
                log.exception("job %s: recording its outcome failed again; will retry", msg.job_id)
                self.pending.append(msg)
