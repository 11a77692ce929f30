"""The storage under each event-log adapter, reached the way another program would.

The contract suite asks one of these to open logs on its storage and to do what an attacker or
an older version could do with raw access (its own driver, not our code): drop the guards,
drop the idempotency index, forge rows with a valid chain, run arbitrary SQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from silverexport.events.log import GENESIS_HASH, EventLog, chain_hash
from silverexport.events.postgres_log import PostgresEventLog
from silverexport.events.sqlite_log import SqliteEventLog
from silverexport.events.types import Event, encode_data

ForgedRow = tuple[str, Event | tuple[str, str], str]  # stream id, event or (type, data), time


class SqliteBackend:
    name = "sqlite"
    raw_error: type[Exception] = sqlite3.DatabaseError
    unique_refusal = "UNIQUE"
    destructive = (
        "UPDATE events SET data = '{}' WHERE seq = 1",
        "DELETE FROM events WHERE seq = 1",
    )

    hollow_delete_guard = (  # present by name, refusing nothing
        "DROP TRIGGER events_no_delete",
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT 1; END",
    )

    def __init__(self, directory: Path):
        self.path = directory / "events.db"

    def open(self, *, create: bool = True) -> EventLog:
        return SqliteEventLog(self.path, create=create)

    def settings_env(self) -> dict[str, str]:
        """What another process needs in its environment to open this log."""
        return {"SILVEREXPORT_DATA_DIR": str(self.path.parent), "SILVEREXPORT_EVENT_LOG_URL": ""}

    def with_views(self, log: EventLog) -> EventLog:
        from silverexport.events.views import ViewTables

        log.projector = ViewTables(log.db)
        return log

    def durable(self, log: EventLog) -> dict[str, object]:
        pragma = log.db.execute
        return {
            "journal_mode": pragma("PRAGMA journal_mode").fetchone()[0],
            "synchronous": pragma("PRAGMA synchronous").fetchone()[0],  # 2 is FULL
            "waits for locks": pragma("PRAGMA busy_timeout").fetchone()[0] > 0,
        }

    expected_durable = {"journal_mode": "wal", "synchronous": 2, "waits for locks": True}

    def exists(self) -> bool:
        return self.path.exists()

    def raw(self, *sql: str) -> None:
        conn = sqlite3.connect(self.path)
        try:
            for statement in sql:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()

    def drop_guards(self) -> None:
        self.raw("DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete")

    def rows(self) -> list[tuple]:
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
        finally:
            conn.close()

    def insert_rows(self, rows: list[tuple]) -> None:
        conn = sqlite3.connect(self.path)
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.commit()
        conn.close()

    def forge(self, rows: list[ForgedRow]) -> None:
        self.insert_rows(_forged(self.rows(), rows))


class PostgresBackend:
    name = "postgres"
    raw_error: type[Exception] = psycopg.Error
    unique_refusal = "unique constraint"
    destructive = (
        "UPDATE events SET data = '{}' WHERE seq = 1",
        "DELETE FROM events WHERE seq = 1",
        "TRUNCATE events",
    )

    hollow_delete_guard = (  # present by name, refusing nothing
        "CREATE FUNCTION events_let_through() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NULL; END $$",
        "CREATE OR REPLACE TRIGGER events_no_delete BEFORE DELETE ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION events_let_through()",
    )

    def __init__(self, url: str):
        self.url = url

    def open(self, *, create: bool = True) -> EventLog:
        return PostgresEventLog(self.url, create=create)

    def settings_env(self) -> dict[str, str]:
        return {"SILVEREXPORT_EVENT_LOG_URL": self.url}

    def with_views(self, log: EventLog) -> EventLog:
        from silverexport.events.postgres_views import PostgresViewTables

        log.projector = PostgresViewTables(log)
        return log

    def durable(self, log: EventLog) -> dict[str, object]:
        show = log.conn.execute
        return {
            name: show(f"SHOW {name}").fetchone()[0]
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        }

    expected_durable = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}

    def exists(self) -> bool:
        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()[0]

    def raw(self, *sql: str) -> None:
        with psycopg.connect(self.url) as conn:
            for statement in sql:
                conn.execute(statement)

    def drop_guards(self) -> None:
        self.raw(
            "DROP TRIGGER events_no_update ON events",
            "DROP TRIGGER events_no_delete ON events",
            "DROP TRIGGER events_no_truncate ON events",
        )

    def rows(self) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(
                "SELECT seq, stream_id, version, type, data::text, recorded_at, hash "
                "FROM events ORDER BY seq"
            ).fetchall()

    def insert_rows(self, rows: list[tuple]) -> None:
        with psycopg.connect(self.url) as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO events VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)

    def forge(self, rows: list[ForgedRow]) -> None:
        self.insert_rows(_forged(self.rows(), rows))


def _forged(stored: list[tuple], rows: list[ForgedRow]) -> list[tuple]:
    """New rows after `stored`, each with the version and chain hash a real append gives."""
    seq, prev = (stored[-1][0], stored[-1][6]) if stored else (0, GENESIS_HASH)
    versions: dict[str, int] = {}
    for _, sid, version, *_rest in stored:
        versions[sid] = max(versions.get(sid, 0), version)
    out = []
    for stream_id, event, at in rows:
        version = versions.get(stream_id, 0) + 1
        versions[stream_id] = version
        seq += 1
        type_, data = event if isinstance(event, tuple) else (event.type, encode_data(event))
        data = data.decode() if isinstance(data, bytes) else data
        prev = chain_hash(prev, seq, stream_id, version, type_, data, at)
        out.append((seq, stream_id, version, type_, data, at, prev))
    return out
