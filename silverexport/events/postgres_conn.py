"""Connecting to the event log's PostgreSQL database: one way, with bounded waits, and
messages that name the setting and never the password.

Every wait on the server is bounded, so that a node whose database went away answers 503
within seconds instead of hanging its requests: the connect (`connect_timeout`), a silent peer
on an idle or busy connection (TCP keepalives, `tcp_user_timeout`), and a lock (`lock_timeout`).
A parameter the URL sets itself (`?connect_timeout=30`) wins over these defaults.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..config import redact_url
from ..errors import StorageError

# How long an append waits for the append lock (or any lock) before it is a StorageError, as
# SQLite's busy timeout bounds the wait there: a stuck holder must not hang the supervisor.
LOCK_TIMEOUT_MS = 30_000
# libpq's defaults wait for the OS (minutes, for a peer that vanished); ours are seconds.
BOUNDED_WAITS: dict[str, int] = {
    "connect_timeout": 5,  # seconds per address tried
    "keepalives": 1,
    "keepalives_idle": 5,  # an idle connection is probed after 5 s of silence,
    "keepalives_interval": 2,  # every 2 s,
    "keepalives_count": 3,  # and dropped after 3 unanswered probes (about 11 s)
    "tcp_user_timeout": 10_000,  # ms that sent data may stay unacknowledged
}


def connect(
    url: str,
    setting: str = "SILVEREXPORT_EVENT_LOG_URL",
    *,
    lock_timeout_ms: int = LOCK_TIMEOUT_MS,
) -> psycopg.Connection:
    """An autocommit connection (every transaction is one we open), or StorageError naming the
    setting and the URL without its password."""
    try:
        conn = psycopg.connect(url, autocommit=True, **bounded_waits(url))
        conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        return conn
    except psycopg.Error as e:
        raise StorageError(
            f"{setting}: cannot connect to {redact_url(url)}: {scrub(str(e), url)}"
        ) from None


def bounded_waits(url: str) -> dict[str, int]:
    """BOUNDED_WAITS less what the URL already says (keyword arguments would override it)."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error:
        given = {}  # libpq refuses the URL itself in a moment, with its own reason
    return {name: value for name, value in BOUNDED_WAITS.items() if name not in given}


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
