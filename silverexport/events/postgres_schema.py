"""The event log's schema on PostgreSQL and its append-only guards: made (or repaired) when
the log opens, and checked by verify. Kept apart from the appends and reads, which need none
of it, so each module reads as one job; the log (postgres_log.py) calls these functions.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

from ..errors import IntegrityError, StorageError
from .log import APPEND_ONLY_MESSAGE, SPARSE_INDEX_SQL
from .postgres_conn import one_line
from .types import JobRequested

GUARD_TRIGGERS = ("events_no_update", "events_no_delete", "events_no_truncate")
IDEMPOTENCY_INDEX = "events_idempotency"
# Any fixed 64-bit key; it only has to be the same in every process using this database.
SCHEMA_LOCK_KEY = 0x5E1E_E7E0_0000_0002

_SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS events (
        seq BIGINT PRIMARY KEY,
        stream_id TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        type TEXT NOT NULL,
        data JSON NOT NULL,
        recorded_at TEXT NOT NULL,
        hash TEXT NOT NULL,
        CONSTRAINT events_stream_version UNIQUE (stream_id, version)
    )
    """,
    f"""
    CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END $$
    """,
    *(
        f"CREATE OR REPLACE TRIGGER {name} BEFORE {verb} ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()"
        for name, verb in zip(GUARD_TRIGGERS, ("UPDATE", "DELETE", "TRUNCATE"), strict=True)
    ),
]
# One tenant's idempotency key names one job, whichever process or node appends.
_IDEMPOTENCY = f"""
CREATE UNIQUE INDEX IF NOT EXISTS {IDEMPOTENCY_INDEX}
ON events ((data->>'tenant'), (data->>'idempotency_key'))
WHERE type = '{JobRequested.type}' AND data->>'idempotency_key' IS NOT NULL
"""


def create_schema(conn: psycopg.Connection, location: str) -> None:
    """Make or repair the table, its guards and indexes; safe to race another process."""
    try:
        with conn.transaction():
            # Two processes starting at once must not both create the table.
            conn.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(_IDEMPOTENCY)
            conn.execute(SPARSE_INDEX_SQL)
    except pg_errors.UniqueViolation:
        raise IntegrityError(
            f"{location}: two requests of one tenant share an idempotency key "
            "(appended by a version without the log's own guard)"
        ) from None
    except psycopg.Error as e:
        raise StorageError(f"could not create the event log at {location}: {e}") from e


def has_table(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()
    return bool(row and row[0])


def missing_guard_triggers(conn: psycopg.Connection) -> list[str]:
    """Append-only triggers that are missing, or present but disabled (ALTER TABLE ...
    DISABLE TRIGGER), which is the same as missing."""
    have = {
        name
        for name, enabled in conn.execute(
            "SELECT tgname, tgenabled FROM pg_trigger "
            "WHERE tgrelid = 'events'::regclass AND NOT tgisinternal"
        )
        if enabled != "D"
    }
    return [name for name in GUARD_TRIGGERS if name not in have]


def probe_guards(conn: psycopg.Connection, lock_sql: str) -> list[str]:
    """The triggers must refuse: probed in a transaction that is always rolled back.

    `lock_sql` takes the append lock, so the probe's seq cannot race an append."""
    problems = []
    probes = (
        ("an UPDATE", "UPDATE events SET type = type WHERE seq = %s"),
        ("a DELETE", "DELETE FROM events WHERE seq = %s"),
        ("a TRUNCATE", "TRUNCATE events"),
    )
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(lock_sql)
            probe = conn.execute(
                "INSERT INTO events (seq, stream_id, version, type, data, recorded_at, hash) "
                "VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM events), "
                "'verify-probe', 1, 'probe', '{}', '', '') RETURNING seq"
            ).fetchone()[0]
            for verb, sql in probes:
                try:
                    with conn.transaction():  # a savepoint: one refusal, not all
                        conn.execute(sql, [probe] if "%s" in sql else None)
                except pg_errors.IntegrityConstraintViolation as e:
                    if APPEND_ONLY_MESSAGE in str(e):
                        continue
                problems.append(f"the database accepted {verb} on events")
    except psycopg.Error as e:
        problems.append(f"could not probe the guards: {one_line(e)}")
    return problems
