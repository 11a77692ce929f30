"""The Silver store on PostgreSQL (SILVEREXPORT_SILVER_URL=postgresql://...): the same six
tables, the same validated all-or-nothing ingest, byte-identical exports.

Ingest checks rows with the SQLite store's own RowChecker and loads them with COPY, in
chunks inside one transaction: a rejected row rolls back every chunk. The table is locked
against other writers for the batch (as SQLite's write lock does), so ids left out can be
assigned in Python exactly as SQLite assigns them (max(id) + 1 at each row).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import psycopg

from ..config import redact_url
from ..errors import StorageError, ValidationError
from ..events.postgres_conn import connect, one_line
from .catalog import DATASETS, ColumnKind, Dataset, get_dataset
from .postgres_schema import SCHEMA_LOCK, create_or_upgrade, fingerprint, stored_fingerprint
from .rendering import quote_name
from .store import INT64, IngestEntryPoints, RowChecker

SETTING = "SILVEREXPORT_SILVER_URL"
COPY_CHUNK = 10_000  # rows per COPY statement: what a rejected row's line is found among
_COPY_LINE = re.compile(r"COPY [^,]+, line (\d+)")


class PostgresSilverStore(IngestEntryPoints):
    """The Silver tables in one PostgreSQL database. Writes go through one connection, one
    batch at a time; each export opens its own connection and snapshot (postgres_export.py)."""

    def __init__(self, url: str):
        self.url = url
        self.conn = connect(url, SETTING)
        self._lock = threading.Lock()
        self._probe: psycopg.Connection | None = None  # check()'s own: an ingest holds conn
        self._probe_lock = threading.Lock()
        try:
            stale = [
                ds
                for ds in DATASETS.values()
                if stored_fingerprint(self.conn, ds) != fingerprint(ds)
            ]
            if stale:  # else no DDL, so no table lock to wait for
                with self.conn.transaction():
                    self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [SCHEMA_LOCK])
                    for ds in stale:
                        create_or_upgrade(self.conn, ds)
        except psycopg.Error as e:
            self.conn.close()
            why = self._why(e)
            raise StorageError(f"{SETTING}: could not create the Silver tables: {why}") from None

    @property
    def location(self) -> str:
        return redact_url(self.url)

    def _why(self, error: Exception) -> str:
        from ..events.postgres_conn import scrub

        return scrub(str(error), self.url)

    def _live(self) -> psycopg.Connection:
        """The write connection, made again if the database dropped it (a restart, a network
        cut): a long-running node must not need a restart to ingest again. Under the lock."""
        if self.conn.broken or self.conn.closed:
            self.conn.close()
            self.conn = connect(self.url, SETTING)
        return self.conn

    def check(self) -> None:
        """`SELECT 1` on a connection kept for it (for /healthz), made again after a broken
        one; StorageError naming the setting, never the password, while the server is away."""
        with self._probe_lock:
            try:
                if self._probe is None or self._probe.broken or self._probe.closed:
                    if self._probe is not None:
                        self._probe.close()
                    self._probe = None
                    self._probe = connect(self.url, SETTING)
                self._probe.execute("SELECT 1")
            except psycopg.Error as e:
                why = self._why(e)
                raise StorageError(f"{SETTING}: {self.location} does not answer: {why}") from None

    def close(self) -> None:
        self.conn.close()
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()

    # -- ingest ------------------------------------------------------------------------------

    def _ingest(self, dataset: str, numbered: Iterable[tuple[int, Any]]) -> int:
        ds = get_dataset(dataset)
        checked = _Checked(ds)
        cols = ", ".join(quote_name(n) for n in ds.column_names)
        copy_sql = f"COPY {quote_name(ds.name)} ({cols}) FROM STDIN"
        numbered = iter(numbered)
        rows = 0
        try:
            with self._lock, self._live().transaction():
                t = quote_name(ds.name)
                # Other writers wait for the batch, as they do on SQLite: so the ids we assign
                # are the ones SQLite would, and nobody takes one meanwhile.
                self.conn.execute(f"LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE")
                top = self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0]
                checked.top = top
                while chunk := list(islice(numbered, COPY_CHUNK)):
                    values, refused = checked.chunk(chunk)
                    try:
                        with self.conn.cursor().copy(copy_sql) as copy:
                            for v in values:
                                copy.write_row(v)
                    except psycopg.errors.UniqueViolation as e:
                        line, value = _copy_row(e, chunk, values)
                        raise ValidationError(
                            f'line {line}, column "id": id {value[0]} is already used in '
                            f"{ds.name} (by a stored row or an earlier line)",
                            field="id",
                        ) from None
                    except psycopg.errors.IntegrityError as e:
                        line, _ = _copy_row(e, chunk, values)
                        raise ValidationError(
                            f"line {line}: refused by the database ({one_line(e)})"
                        ) from None
                    if refused is not None:  # after the rows before it, as SQLite finds it
                        raise refused
                    rows += len(values)
        except psycopg.Error as e:
            raise StorageError(
                f"could not write to the Silver store {self.location}: {self._why(e)}"
            ) from None
        return rows

    # -- reading -----------------------------------------------------------------------------

    def count(self, dataset: str) -> int:
        ds = get_dataset(dataset)
        try:
            with self._lock:
                return self.conn.execute(f"SELECT count(*) FROM {quote_name(ds.name)}").fetchone()[
                    0
                ]
        except psycopg.Error as e:
            raise StorageError(f"could not read the Silver store: {self._why(e)}") from None

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in DATASETS}

    def export(self, dataset: str, fmt: Any, target: Any, **options: Any) -> Any:
        from .postgres_export import export_to_file  # Arrow loads only for Parquet

        return export_to_file(self.url, dataset, fmt, target, **options)

    def iter_wallet(self, wallet: str, fmt: Any, **options: Any) -> Iterator[bytes]:
        from .postgres_export import iter_wallet_export

        return iter_wallet_export(self.url, wallet, fmt, **options)


class _Checked:
    """The RowChecker's tuples, with ids assigned as SQLite assigns them and the one value
    PostgreSQL text cannot hold (U+0000) refused with the line and column named."""

    def __init__(self, ds: Dataset):
        self.check = RowChecker(ds)
        self.top = 0  # the largest id stored or given so far
        self.texts = [
            (i, c.name)
            for i, c in enumerate(ds.columns)
            if c.kind in (ColumnKind.TEXT, ColumnKind.CHOICE)
        ]

    def chunk(
        self, chunk: list[tuple[int, Any]]
    ) -> tuple[list[tuple[Any, ...]], ValidationError | None]:
        """The checked rows of `chunk` up to the first bad one, and its error if any."""
        values = []
        for line, row in chunk:
            try:
                values.append(self(line, row))
            except ValidationError as e:
                return values, e
        return values, None

    def __call__(self, line: int, row: Any) -> tuple[Any, ...]:
        values = self.check(line, row)
        for i, name in self.texts:
            if values[i] is not None and "\x00" in values[i]:
                raise ValidationError(
                    f'line {line}, column "{name}": the text holds U+0000 (NUL), which '
                    "PostgreSQL text cannot store",
                    field=name,
                )
        given = values[0]
        if given is None:
            if self.top >= INT64[1]:
                raise ValidationError(
                    f'line {line}, column "id": every id up to {INT64[1]} is taken; give one',
                    field="id",
                )
            self.top += 1
            return (self.top, *values[1:])
        self.top = max(self.top, given)
        return values


def _copy_row(
    error: psycopg.Error, chunk: list[tuple[int, Any]], values: list[tuple[Any, ...]]
) -> tuple[int | str, tuple[Any, ...]]:
    """The input line and values of the COPY row PostgreSQL refused (its context names it)."""
    found = _COPY_LINE.search(error.diag.context or "")
    if found and 1 <= int(found.group(1)) <= len(chunk):
        i = int(found.group(1)) - 1
        return chunk[i][0], values[i]
    return "?", (None,)
