"""Keeps pykka from logging a client's mistake as a traceback.

pykka logs every exception an actor hands back to an asking caller ("Exception returned from
... to caller", INFO, with the traceback). For our client errors (invalid input, unknown job,
conflicts, a full queue) that is noise: the caller turns them into a 4xx and the access log
has the line. So is a backend out of reach (StorageError: the event log's database stopped):
each write is answered 503 and the HTTP edge logs one line, where a traceback per request
would bury the log during an outage. Anything else handed back (a bug, an integrity failure)
keeps its traceback.
"""

from __future__ import annotations

import logging

from ..errors import (
    ConcurrencyError,
    ConflictError,
    GoneError,
    NotFoundError,
    QueueFullError,
    StorageError,
    ValidationError,
)

CLIENT_ERRORS = (
    ValidationError,
    NotFoundError,
    ConflictError,
    ConcurrencyError,
    GoneError,
    QueueFullError,
    StorageError,
)


class ClientErrorFilter(logging.Filter):
    """Drops pykka's record of a client error returned to a caller; passes all else."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, CLIENT_ERRORS)


_FILTER = ClientErrorFilter()


def quiet_client_errors() -> None:
    """Install the filter on pykka's logger (once: logging ignores a second add)."""
    logging.getLogger("pykka").addFilter(_FILTER)
