"""Exports from the PostgreSQL Silver store: lines built by PostgreSQL, streamed to a hashed file.

Each export opens its own connection and one REPEATABLE READ, READ ONLY transaction, so every
query of it (the Parquet pre-pass, the rows, the look past the limit) sees one snapshot. The
rows come through a server-side cursor, a batch at a time, as finished lines
(postgres_rendering.py) in bytea, so Python only joins, hashes and writes bytes: memory stays
flat in rows on both sides. Writing (hashing, syncing, gzip, the copy for `-o`, progress,
cancellation, truncation) is writers.py's, shared with the SQLite store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from ..errors import StorageError, ValidationError
from ..events.postgres_conn import bounded_waits, scrub
from ..model import Compression, ExportFormat
from .catalog import Dataset, get_dataset
from .file_sink import BackgroundWriter
from .postgres_rendering import line_sql
from .rendering import header, quote_name
from .store import WALLET_COLUMNS, WALLET_DATASET
from .target import Target
from .writers import WALLET, ExportResult, Filters, pump, write_export

CURSOR = "silver_export"
NO_FILTERS = Filters()  # frozen, so sharing it is safe


@contextmanager
def snapshot(url: str) -> Iterator[psycopg.Connection]:
    """A connection inside one REPEATABLE READ, READ ONLY transaction, closed after."""
    try:
        conn = psycopg.connect(url, **bounded_waits(url))  # a vanished server fails the export
    except psycopg.Error as e:
        raise StorageError(f"could not reach the Silver store: {scrub(str(e), url)}") from None
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            yield conn
    except psycopg.Error as e:
        raise StorageError(f"could not read the Silver store: {scrub(str(e), url)}") from None
    finally:
        conn.close()


def where_sql(ds: Dataset, filters: Filters) -> tuple[str, dict[str, Any]]:
    """The filter conditions (equal to writers._where's, for one query without paging)."""
    time = quote_name(ds.time_column)
    conds, params = [], {}
    for cond, key, value in (
        ('"target_id" = %(target_id)s', "target_id", filters.target_id),
        ('"network" = %(network)s', "network", filters.network),
        (f"{time} >= %(from_)s", "from_", filters.from_),
        (f"{time} < %(to)s", "to", filters.to),
    ):
        if value is not None:
            conds.append(cond)
            params[key] = value
    return (f" WHERE {' AND '.join(conds)}" if conds else ""), params


def ordered_sql(ds: Dataset, select: str, filters: Filters) -> tuple[str, dict[str, Any]]:
    """`select` over the matching rows in (time, id) order, at most %(n)s of them."""
    where, params = where_sql(ds, filters)
    order = f'{quote_name(ds.time_column)}, "id"'
    return f"SELECT {select} FROM {quote_name(ds.name)}{where} ORDER BY {order} LIMIT %(n)s", params


class Lines:
    """The matching rows' finished lines through a server-side cursor; one row past `limit`
    is asked for, so `more()` can say whether the export is truncated."""

    def __init__(
        self, conn: psycopg.Connection, ds: Dataset, fmt: ExportFormat, f: Filters, limit: int
    ):
        self.name = ds.name
        sql, params = ordered_sql(ds, f"convert_to({line_sql(ds, fmt)}, 'UTF8')", f)
        self.cursor = conn.cursor(CURSOR, binary=True)
        self.cursor.execute(sql, {**params, "n": limit + 1})

    def read(self, n: int) -> tuple[bytes, int]:
        rows = self.cursor.fetchmany(n)
        return b"".join([r[0] for r in rows]), len(rows)

    def more(self) -> bool:
        return self.cursor.fetchone() is not None


def export_to_file(
    url: str,
    dataset: str,
    fmt: ExportFormat | str,
    target: Target,
    *,
    filters: Filters = NO_FILTERS,
    limit: int,
    compression: Compression | str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = 5000,
    copy_to: str | Path | None = None,
) -> ExportResult:
    """`writers.export_to_file`, reading the PostgreSQL store at `url`: the same contract."""
    ds, fmt = get_dataset(dataset), ExportFormat(fmt)
    if fmt is ExportFormat.PARQUET:
        from .postgres_parquet import export_parquet

        return export_parquet(
            url,
            ds,
            target,
            filters=filters,
            limit=limit,
            should_stop=should_stop,
            on_progress=on_progress,
            batch_size=batch_size,
        )
    gzipped = bool(compression) and Compression(compression) is Compression.GZIP
    with snapshot(url) as conn:

        def fill(writer: BackgroundWriter) -> tuple[int, bool]:
            lines = Lines(conn, ds, fmt, filters, limit)
            return pump(lines, writer, limit, max(1, batch_size), should_stop, on_progress)

        return write_export(target, copy_to, gzipped, header(ds, fmt), fill)


def wallet_sql(fmt: ExportFormat) -> str:
    """Token transfers from or to %(wallet)s via the lower(address) indexes, at most %(n)s:
    each branch reads at most n rows in index order, as on SQLite."""
    ds = get_dataset(WALLET_DATASET)
    t, time = quote_name(ds.name), quote_name(ds.time_column)
    branches = " UNION ALL ".join(
        f"(SELECT id FROM {t} WHERE lower({quote_name(col)}) = %(wallet)s "
        f'ORDER BY {time}, "id" LIMIT %(n)s)'
        for col in WALLET_COLUMNS
    )
    return (
        f"SELECT convert_to({line_sql(ds, fmt)}, 'UTF8') FROM {t} WHERE id IN ({branches}) "
        f'ORDER BY {time}, "id" LIMIT %(n)s'
    )


def iter_wallet_export(
    url: str, wallet: str, fmt: ExportFormat | str, *, max_records: int, batch_size: int = 5000
) -> Iterator[bytes]:
    """The legacy synchronous wallet export, streamed in chunks from one snapshot."""
    if not isinstance(wallet, str) or not WALLET.fullmatch(wallet):
        raise ValidationError("the wallet must be 0x followed by 40 hex digits", field="wallet")
    fmt = ExportFormat(fmt)
    with snapshot(url) as conn:
        if head := header(get_dataset(WALLET_DATASET), fmt):
            yield head
        cursor = conn.cursor(CURSOR, binary=True)
        cursor.execute(wallet_sql(fmt), {"wallet": wallet.lower(), "n": max_records})
        while batch := cursor.fetchmany(batch_size):
            yield b"".join([r[0] for r in batch])
