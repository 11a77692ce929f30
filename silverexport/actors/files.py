"""A job's files in the export store (the storage port): their keys, and removing them.

One naming for the whole service: a job's file is `<job_id>.<ext>`; a write in progress is
the port's business (`<key>.attempt<N>.part` in a directory, a multipart upload in S3), and
is found again through `list_partials`, never by a name built here.
"""

from __future__ import annotations

import logging

from ..storage import ExportStorage

log = logging.getLogger(__name__)


def final_name(job_id: str, extension: str) -> str:
    return f"{job_id}.{extension}"


def job_of(key: str) -> str:
    """The job a key (or a partial's key) belongs to: job ids hold no dot."""
    return key.split(".", 1)[0]


def remove_parts(storage: ExportStorage, job_id: str) -> None:
    """Drop every attempt's write in progress of a job; never raises (a sweep retries)."""
    try:
        partials = storage.list_partials(f"{job_id}.")
    except Exception as e:
        log.warning("could not list the partial files of job %s: %s", job_id, e)
        return
    for partial in partials:
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
