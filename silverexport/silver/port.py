"""The Silver store's port: what the service, the commands and ingestion need of a backend.

Two adapters implement it, chosen in one place (`backends.open_silver_store`): the SQLite file
(`store.SilverStore`) and PostgreSQL (`postgres_store.PostgresSilverStore`). Both validate
ingest with the same checker, keep the same six tables, and give byte-identical exports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..model import Compression, ExportFormat
    from .target import Target
    from .writers import ExportResult, Filters


@runtime_checkable
class SilverBackend(Protocol):
    """One Silver store. Writes are validated and all or nothing; each export reads one
    consistent snapshot through its own connection, so exports never wait on ingest."""

    @property
    def location(self) -> str:
        """Where the store is, for messages (a path, or a URL without its password)."""
        ...

    def ingest(self, dataset: str, rows: Iterable[dict[str, Any]], *, first_line: int = 1) -> int:
        """Validate and insert `rows` in one transaction; the number of rows."""
        ...

    def ingest_jsonl(
        self,
        dataset: str,
        lines: Iterable[bytes | str],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Ingest JSON Lines (blank lines skipped); `progress` gets the bytes read so far."""
        ...

    def count(self, dataset: str) -> int: ...

    def counts(self) -> dict[str, int]: ...

    def export(
        self,
        dataset: str,
        fmt: ExportFormat | str,
        target: Target,
        *,
        filters: Filters,
        limit: int,
        compression: Compression | str | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[int], None] | None = None,
        batch_size: int = 5000,
        copy_to: str | Path | None = None,
    ) -> ExportResult:
        """Write at most `limit` matching rows to `target` (see `writers.export_to_file`)."""
        ...

    def iter_wallet(
        self, wallet: str, fmt: ExportFormat | str, *, max_records: int, batch_size: int = 5000
    ) -> Iterator[bytes]:
        """The legacy wallet export's bytes, from one snapshot."""
        ...

    def close(self) -> None: ...
