"""The one place that turns settings into a Silver store: SQLite file or PostgreSQL database.

The composition root (`ExportSystem`) and the commands that write the store (ingest,
demo-data) call this; nothing else knows which adapter it holds.
"""

from __future__ import annotations

from ..config import Settings
from .port import SilverBackend


def open_silver_store(settings: Settings) -> SilverBackend:
    """The store `SILVEREXPORT_SILVER_URL` names (default: silver.db under the data dir).

    A bad URL or an unreachable database raises StorageError whose one line names the setting
    and never the password; the CLI prints it and exits non-zero.
    """
    if settings.silver_url:
        from .postgres_store import PostgresSilverStore  # psycopg only loads when it is used

        return PostgresSilverStore(settings.silver_url)
    from .store import SilverStore

    return SilverStore(settings.silver_path)
