"""silverexport: asynchronous, event-sourced exports of Silver datasets.

The names in `__all__` are the embedding API; everything else may change. They are imported
on first use (PEP 562), so that `import silverexport` and the command line start without
loading the actor system or aiohttp until a command needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .actors.slots import Slots, SlotTimeout
    from .errors import (
        ConcurrencyError,
        ConflictError,
        ExportStorageError,
        GoneError,
        IntegrityError,
        NotFoundError,
        SilverExportError,
        StorageError,
        ValidationError,
    )
    from .model import Compression, ExportFormat, ExportRequest, JobStatus, JobView
    from .system import ExportSystem

# Where each public name lives.
_HOMES = {
    "Slots": ".actors.slots",
    "SlotTimeout": ".actors.slots",
    "ConcurrencyError": ".errors",
    "ConflictError": ".errors",
    "ExportStorageError": ".errors",
    "GoneError": ".errors",
    "IntegrityError": ".errors",
    "NotFoundError": ".errors",
    "SilverExportError": ".errors",
    "StorageError": ".errors",
    "ValidationError": ".errors",
    "Compression": ".model",
    "ExportFormat": ".model",
    "ExportRequest": ".model",
    "JobStatus": ".model",
    "JobView": ".model",
    "ExportSystem": ".system",
}


def make_app(system: ExportSystem):
    """The aiohttp application serving `system` over HTTP (SPEC §5)."""
    from .http.app import make_app as _make_app

    return _make_app(system)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'silverexport' has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Compression",
    "ConcurrencyError",
    "ConflictError",
    "ExportFormat",
    "ExportRequest",
    "ExportStorageError",
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
