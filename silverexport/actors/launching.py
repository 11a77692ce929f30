"""Starting queued jobs: the supervisor's half that turns a queued job into a running actor.

A mixin of JobSupervisor (it runs on the supervisor's thread and uses its parts), kept apart so
the actor's module stays about messages. A job that cannot be started goes to the back of its
tenant's line (on a SharedQueue it keeps its place and is passed over) and the others start;
after MAX_ATTEMPTS tries it fails with the reason. Whose job it is does not matter here: the
queue holds what this process may start, and the append of JobStarted at the job's version
decides, when nodes race for one, which of them starts it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pykka

from ..config import MAX_ATTEMPTS, Settings
from ..errors import ConcurrencyError, StorageError
from ..events.types import JobFailed, JobStarted
from ..events.views import State, to_view
from ..nodes import Liveness
from .exporter import ExportActor, ExportFn
from .fair_queue import JobQueue
from .job_book import QUEUED, JobBook
from .messages import Run
from .slots import Side, Slots

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..silver.port import SilverBackend

log = logging.getLogger(__name__)


@dataclass
class Running:
    ref: pykka.ActorRef
    attempt: int
    cancel: threading.Event


class Launching:
    """What the start path needs of its host (JobSupervisor sets all of these)."""

    settings: Settings
    book: JobBook
    queue: JobQueue
    slots: Slots
    owner: Liveness
    exporter: type[ExportActor]
    export_fn: ExportFn | None
    silver: SilverBackend | None
    running: dict[str, Running]
    start_failures: Counter[str]
    run_jobs: bool
    shutting_down: bool
    actor_ref: pykka.ActorRef
    _retention: Callable[[], float]
    unreachable: str | None
    _log_unreachable: Callable[[StorageError], None]

    def _schedule(self) -> None:
        """Start queued jobs, round-robin across tenants, while export slots are free. Never
        raises: a job that cannot be started goes to the back of its tenant's line, and the
        others start; after MAX_ATTEMPTS tries it fails with the reason."""
        if self.unreachable is not None:
            return  # the log is out of reach: the next Tick that reads it starts them
        tried: set[str] = set()
        while self.queue and self.run_jobs and not self.shutting_down:
            job_id = self.queue.peek(skip=tried)
            if job_id is None:
                return
            state = self.book.active.get(job_id)
            if state is None or state["status"] != QUEUED:
                self.queue.remove(job_id)
                continue
            if not self.slots.try_acquire(Side.EXPORT):
                return
            self.queue.take(job_id)
            try:
                started = self._start(state)
            except StorageError as e:
                # The log is out of reach, so nothing was recorded: not the job's fault, and
                # no start try spent. It keeps its place and the others wait with it, until
                # a Tick reads the log again (a freed slot must not spin on a dead server).
                self.slots.release(Side.EXPORT)
                self.queue.put_back(state["tenant"], job_id)
                self._log_unreachable(e)
                return
            except Exception as e:
                self.slots.release(Side.EXPORT)
                tried.add(job_id)
                self._start_failed(state, e)
                continue
            self.start_failures.pop(job_id, None)
            if not started:
                self.slots.release(Side.EXPORT)

    def _start_failed(self, state: State, error: Exception) -> None:
        job_id = state["job_id"]
        self.start_failures[job_id] += 1
        tries = self.start_failures[job_id]
        log.error("could not start job %s (try %d)", job_id, tries, exc_info=error)
        if tries >= MAX_ATTEMPTS:
            try:
                self.book.append(
                    job_id,
                    JobFailed(
                        error=f"could not be started after {tries} tries: {error}",
                        attempt=state["attempts"],
                        will_retry=False,
                        retention_seconds=self._retention(),
                    ),
                )
                self.start_failures.pop(job_id, None)
                return
            except Exception:
                log.exception("job %s: recording that it cannot start failed too", job_id)
        self.queue.push(state["tenant"], job_id)

    def _start(self, state: State) -> bool:
        """Record the start and spawn the actor; False when the job needs no slot after all."""
        job_id = state["job_id"]
        attempt = state["attempts"] + 1
        if attempt > MAX_ATTEMPTS:
            self.book.append(
                job_id,
                JobFailed(
                    error=f"gave up after {MAX_ATTEMPTS} attempts",
                    attempt=state["attempts"],
                    will_retry=False,
                    retention_seconds=self._retention(),
                ),
            )
            return False
        try:
            state = self.book.append(job_id, JobStarted(attempt=attempt, owner=self.owner.owner_id))
        except ConcurrencyError:
            # Another node started (or cancelled) it first; the book caught up, so the queue
            # no longer holds it, and the next job is tried.
            return False
        return self._spawn_or_fail(state)

    def _spawn_or_fail(self, state: State) -> bool:
        """Spawn for a job the log just recorded as started. If the actor cannot be made, the
        attempt fails with the reason (and is retried while attempts remain); the slot is
        released. True if an actor runs."""
        try:
            self._spawn(state)
            return True
        except Exception as e:
            job_id, attempt = state["job_id"], state["attempts"]
            log.exception("could not start the export actor of job %s", job_id)
            self.slots.release(Side.EXPORT)
            retry = attempt < MAX_ATTEMPTS
            with contextlib.suppress(ConcurrencyError):
                self.book.append(
                    job_id,
                    JobFailed(
                        error=f"could not start the export: {e}",
                        attempt=attempt,
                        will_retry=retry,
                        retention_seconds=None if retry else self._retention(),
                    ),
                )
                if retry:
                    self.queue.push(state["tenant"], job_id)
            return False

    def _spawn(self, state: State) -> None:
        """One ExportActor for the attempt the log just recorded as started."""
        job_id, attempt = state["job_id"], state["attempts"]
        cancel = threading.Event()
        ref = self.exporter.start(
            supervisor=self.actor_ref,
            job=to_view(state),
            attempt=attempt,
            store_path=self.silver if self.silver is not None else self.settings.silver_path,
            storage=self.storage,
            max_records=state["max_records"] or self.settings.max_records,
            cancel=cancel,
            progress_interval=self.settings.progress_interval_seconds,
            export_fn=self.export_fn,
        )
        self.running[job_id] = Running(ref, attempt, cancel)
        ref.tell(Run())
