"""Connecting to the event log's PostgreSQL database: one way, with bounded waits, and
messages that name the setting and never the password."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg

from ..config import redact_url
from ..errors import StorageError

# How long an append waits for the append lock (or any lock) before it is a StorageError, as
# SQLite's busy timeout bounds the wait there: a stuck holder must not hang the supervisor.
LOCK_TIMEOUT_MS = 30_000


def connect(
    url: str,
    setting: str = "SILVEREXPORT_EVENT_LOG_URL",
    *,
    lock_timeout_ms: int = LOCK_TIMEOUT_MS,
) -> psycopg.Connection:
    """An autocommit connection (every transaction is one we open), or StorageError naming the
    setting and the URL without its password."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        return conn
    except psycopg.Error as e:
        raise StorageError(
            f"{setting}: cannot connect to {redact_url(url)}: {scrub(str(e), url)}"
        ) from None


def scrub(message: str, url: str) -> str:
    """One line, and never the password, whatever the driver chose to echo."""
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        password = urlsplit(url).password  # a URL libpq cannot parse still keeps its secret
    line = " ".join(message.split())
    return line.replace(str(password), "***") if password else line


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())
