"""A job's files in the export store (the storage port): their keys, and removing them.

One naming for the whole service: attempt N of a job writes `<job_id>.a<N>.<ext>`, a name no
other attempt uses, so an attempt only ever writes and deletes its own file. With several
nodes a node frozen past its lease may still finish an attempt another node has started
again; with one name per job, its late commit would replace the file of the attempt that
completes, and its cleanup could remove it. Jobs completed by earlier versions have
`<job_id>.<ext>` (no attempt) recorded in their JobCompleted, and are served, expired and swept
by that recorded name: nothing here ever rebuilds a completed job's name.

A write in progress is the port's business (`<key>.attempt<N>.part` in a directory, a
multipart upload in S3), and is found again through `list_partials`, never by a name built
here.
"""

from __future__ import annotations

import logging
import re

from ..storage import ExportStorage

log = logging.getLogger(__name__)

# `<job_id>.a<N>.<ext>`; job ids hold no dot, and no extension is `a` and digits
_ATTEMPT = re.compile(r"^[^.]+\.a(?P<attempt>[0-9]+)\.")


def final_name(job_id: str, attempt: int, extension: str) -> str:
    return f"{job_id}.a{attempt}.{extension}"


def job_of(key: str) -> str:
    """The job a key (or a partial's key) belongs to, in either naming: job ids hold no dot."""
    return key.split(".", 1)[0]


def attempt_of(key: str) -> int | None:
    """The attempt whose file (or partial) `key` is; None for the earlier `<job_id>.<ext>`."""
    m = _ATTEMPT.match(key)
    return int(m["attempt"]) if m else None


def remove_parts(storage: ExportStorage, job_id: str, up_to_attempt: int) -> None:
    """Drop the writes in progress of a job's attempts up to `up_to_attempt` (those of the
    earlier naming too, which name no attempt); never raises (a sweep retries).

    Called by the process whose append recorded that attempt's end (an append refused means
    another process saw it first); whatever a later attempt writes is left alone."""
    try:
        partials = storage.list_partials(f"{job_id}.")
    except Exception as e:
        log.warning("could not list the partial files of job %s: %s", job_id, e)
        return
    for partial in partials:
        attempt = attempt_of(partial.key)
        if job_of(partial.key) != job_id or (attempt is not None and attempt > up_to_attempt):
            continue
        try:
            storage.drop_partial(partial)
        except Exception as e:
            log.warning("could not drop %s (will retry on a later sweep): %s", partial.ref, e)


def discard(storage: ExportStorage, key: str | None) -> bool:
    """Remove a file that must not stay, where failing is no reason to stop.

    Used on the way out of a failure and by expiry (a read-only export directory, or an
    unreachable bucket, refuses the delete as well): the job's outcome must still be recorded,
    and the supervisor's sweep removes the file once it can. False if the file is not gone.
    """
    if key is None:
        return False
    try:
        storage.delete(key)
        return True
    except Exception as e:
        log.warning("could not remove %s (will retry on a later sweep): %s", key, e)
        return False
