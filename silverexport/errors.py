"""The project's error hierarchy: one root, so callers and the HTTP edge can catch ours alone."""


class SilverExportError(Exception):
    """Root of every error this project raises on purpose."""

    code = "error"


class ValidationError(SilverExportError):
    """Input was refused; the message names the field (and row) and why."""

    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.field = field
        if code:
            self.code = code


class NotFoundError(SilverExportError):
    """The job does not exist (or belongs to another tenant)."""

    code = "not_found"


class ConflictError(SilverExportError):
    """The request conflicts with the job's current state."""

    code = "conflict"


class GoneError(SilverExportError):
    """The job's file was deleted after its retention time."""

    code = "expired"


class ConcurrencyError(SilverExportError):
    """Another writer appended the same stream version first (optimistic concurrency)."""

    code = "concurrency_conflict"


class InternalError(SilverExportError):
    """A defect of ours (a projector bug, a broken constraint): never the client's doing, and
    never retried as contention."""

    code = "internal_error"


class QueueFullError(SilverExportError):
    """The tenant already has as many jobs queued as it may; nothing was recorded."""

    code = "too_many_queued"

    def __init__(self, message: str, *, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class IntegrityError(SilverExportError):
    """The event log's history does not verify (hash chain, guards or views)."""

    code = "integrity_error"


class StorageError(SilverExportError):
    """A storage operation failed (disk full, unwritable directory, locked database)."""

    code = "storage_error"


class ExportStorageError(SilverExportError):
    """The export-file store failed an operation: a bucket or its endpoint out of reach, a
    directory that refuses writes. A server-side fault that may well pass (503, Retry-After);
    the message is one line that never carries a secret."""

    code = "storage_unavailable"


def quoted(value: object, limit: int = 64) -> str:
    """`value` as repr for an error message, or its length when it is too long to echo: an
    error names what was refused without sending a client's oversized text back."""
    text = repr(value)
    return text if len(text) <= limit else f"a value of {len(str(value))} characters"
