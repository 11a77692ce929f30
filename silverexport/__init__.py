"""silverexport: asynchronous, event-sourced exports of Silver datasets.

The names in `__all__` are the embedding API; everything else may change.
"""

from .actors.slots import Slots, SlotTimeout
from .errors import (
    ConcurrencyError,
    ConflictError,
    GoneError,
    IntegrityError,
    NotFoundError,
    SilverExportError,
    StorageError,
    ValidationError,
)
from .model import Compression, ExportFormat, ExportRequest, JobStatus, JobView
from .system import ExportSystem


def make_app(system: ExportSystem):
    """The aiohttp application serving `system` over HTTP (SPEC §5)."""
    from .http.app import make_app as _make_app

    return _make_app(system)


__all__ = [
    "Compression",
    "ConcurrencyError",
    "ConflictError",
    "ExportFormat",
    "ExportRequest",
    "ExportSystem",
    "GoneError",
    "IntegrityError",
    "JobStatus",
    "JobView",
    "NotFoundError",
    "SilverExportError",
    "SlotTimeout",
    "Slots",
    "StorageError",
    "ValidationError",
    "make_app",
]
