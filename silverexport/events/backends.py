"""The one place that turns settings into an event log: SQLite file or PostgreSQL database.

The composition root (`ExportSystem`) and the offline commands (audit, verify, rebuild) call
this; nothing else knows which adapter it holds.
"""

from __future__ import annotations

from ..config import Settings
from ..errors import StorageError
from .log import EventLog
from .views import ViewTables


def open_event_log(settings: Settings, *, create: bool = True) -> EventLog:
    """The log `SILVEREXPORT_EVENT_LOG_URL` names (default: events.db under the data dir).

    A bad URL or an unreachable database raises StorageError whose one line names the setting
    and never the password; the CLI prints it and exits non-zero.
    """
    if settings.event_log_url:
        from .postgres_log import PostgresEventLog  # psycopg only loads when it is used

        return PostgresEventLog(settings.event_log_url, create=create)
    from .sqlite_log import SqliteEventLog

    return SqliteEventLog(settings.events_path, create=create)


def open_views(log: EventLog, *, create: bool = True) -> ViewTables:
    """The job views kept beside `log`, in the same database, in the SQL of its backend."""
    from .sqlite_log import SqliteEventLog

    if isinstance(log, SqliteEventLog):
        return ViewTables(log.db, create=create)
    from .postgres_log import PostgresEventLog
    from .postgres_views import PostgresViewTables

    if isinstance(log, PostgresEventLog):
        return PostgresViewTables(log, create=create)  # the same methods as ViewTables
    raise StorageError(f"no job views for the event log at {log.location}")
