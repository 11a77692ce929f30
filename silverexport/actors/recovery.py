"""Housekeeping of a serving process: orphans of dead processes, expiry, stale files.

Functions over the supervisor's parts rather than methods, so the actor stays about messages.
A one-shot process (recover=False) recovers only its own jobs: other processes' queued or
interrupted jobs are left to a serving process, and their attempts are not spent here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from ..config import MAX_ATTEMPTS
from ..errors import ConcurrencyError
from ..events.types import JobExpired, JobFailed
from ..model import JobStatus
from ..nodes import Liveness
from ..storage import ExportStorage, Partial
from ..timeutil import now_text
from . import files
from .job_book import QUEUED, RUNNING, JobBook

log = logging.getLogger(__name__)
COMPLETED = JobStatus.COMPLETED.value


def recover_orphans(
    book: JobBook,
    owner: Liveness,
    *,
    storage: ExportStorage,
    busy: Collection[str],
    enqueue: Callable[[str, str], None],
    retention: float,
    everyone: bool,
) -> None:
    """Queue again the jobs whose process died; an interrupted run counts as an attempt.

    `busy` are the jobs running here (or finished here, their outcome still to record). With
    `everyone` False only this process's own jobs are looked at.
    """
    alive: dict[str | None, bool] = {}

    def orphaned(state: dict) -> bool:
        who = state["owner"]
        if who == owner.owner_id:
            return True
        if not everyone:
            return False
        if who not in alive:
            alive[who] = owner.is_alive(who)
        return not alive[who]

    for state in sorted(book.active.values(), key=lambda s: s["created_seq"]):
        job_id = state["job_id"]
        if job_id in busy or not orphaned(state):
            continue
        if state["status"] == QUEUED:
            enqueue(state["tenant"], job_id)
        elif state["status"] == RUNNING:
            attempt = state["attempts"]
            retry = attempt < MAX_ATTEMPTS
            try:
                book.append(
                    job_id,
                    JobFailed(
                        error=f"interrupted: the process running attempt {attempt} stopped",
                        attempt=attempt,
                        will_retry=retry,
                        retention_seconds=None if retry else retention,
                    ),
                )
            except ConcurrencyError:
                continue  # recovered by another process, which removes the partials
            # Only after the append: a process that judged from a stale view must not remove
            # what the attempt that now runs is writing.
            files.remove_parts(storage, job_id, attempt)
            if retry:
                enqueue(state["tenant"], job_id)


def expire_due(book: JobBook, storage: ExportStorage) -> list[str]:
    """Expire the finished jobs past their retention, found through the views' index."""
    expired: list[str] = []
    while due := book.views.due_to_expire(now_text()):
        progressed = False
        for state in due:
            try:
                book.append(state["job_id"], JobExpired(file_deleted=bool(state["file_name"])))
            except ConcurrencyError:
                continue  # expired (or changed) by another process just now
            progressed = True
            # The event comes first: a crash (or a refused unlink) here leaves a file that the
            # sweeps remove.
            if state["file_name"]:
                files.discard(storage, state["file_name"])
            expired.append(state["job_id"])
        if not progressed:
            break
    return expired


def sweep_stale_files(book: JobBook, storage: ExportStorage, running: Collection[str]) -> None:
    """Remove the files of finished jobs that no one needs any more (partials of dead
    attempts, files of failed, cancelled and expired jobs). Runs at start and on the expiry
    timer.

    A removal can fail when it is first tried (an unwritable export directory refuses unlinks,
    a bucket may be out of reach); this sweep removes them once it can. Only jobs that are
    over are looked at: a queued or running job may be another process's, whose start this
    one has not read yet.
    """
    try:
        keys = storage.list()
        partials = storage.list_partials()
    except Exception as e:
        log.warning("could not list %s: %s", storage.url, e)
        return
    by_job: dict[str, list[str | Partial]] = {}
    for item in [*keys, *partials]:
        key = item if isinstance(item, str) else item.key
        by_job.setdefault(files.job_of(key), []).append(item)
    over = book.views.load_many([j for j in by_job if j not in book.active and j not in running])
    for job_id, state in over.items():
        if state["status"] in (QUEUED, RUNNING):
            continue  # another process's job that this one has not read yet
        for item in by_job[job_id]:
            if isinstance(item, str):
                if not (state["status"] == COMPLETED and item == state["file_name"]):
                    files.discard(storage, item)
                continue
            try:
                storage.drop_partial(item)
            except Exception as e:
                log.warning("could not drop %s (a later sweep retries): %s", item.ref, e)
