"""JSONL and CSV exports, formatted by SQLite itself and streamed to a hashed file.

SQLite builds each row's finished line (by the SQL of rendering.py) and joins a batch of them
into one value, so Python only hashes and writes bytes, once per batch. That is what makes the
export run at about the sqlite3 CLI's speed; tests/silver prove the bytes equal what the
rules of SPEC §3 give, checked with Python's `csv` and `json` modules.
"""

from __future__ import annotations

import gzip
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import sqlite as sq
from ..errors import SilverExportError, StorageError, ValidationError
from ..model import Compression, ExportFormat
from .catalog import Dataset, get_dataset
from .file_sink import GZIP_LEVEL, BackgroundWriter, HashingSink, open_copy
from .port import SilverBackend
from .rendering import header, line_sql, quote_name
from .shared_snapshot import Readers, pin
from .store import WALLET_COLUMNS, WALLET_DATASET
from .target import Target, open_target

READERS = 2  # connections rendering batches at once, one a core (see shared_snapshot.py)
WALLET = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Filters:
    """Row filters; `from_` (inclusive) and `to` (exclusive) are canonical UTC time text."""

    target_id: str | None = None
    network: str | None = None
    from_: str | None = None
    to: str | None = None


@dataclass(frozen=True, slots=True)
class ExportResult:
    rows: int
    bytes: int
    sha256: str
    truncated: bool
    copied: bool = False  # whether `copy_to` got every byte


class ExportCancelled(SilverExportError):
    """The export stopped because `should_stop()` said so; the caller removes the file."""

    code = "cancelled"


def _where(ds: Dataset, filters: Filters, after: bool) -> tuple[str, dict[str, Any]]:
    """The filter conditions; with `after`, only rows after (:after_time, :after_id)."""
    time = quote_name(ds.time_column)
    conds, params = [], {}
    for cond, key, value in (
        ('"target_id" = :target_id', "target_id", filters.target_id),
        ('"network" = :network', "network", filters.network),
        # After a matching row, `from` holds already: and SQLite seeks an index by one lower
        # bound only, so a second one could make every batch walk from `from` again.
        (f"{time} >= :from_", "from_", None if after else filters.from_),
        (f"{time} < :to", "to", filters.to),
    ):
        if value is not None:
            conds.append(cond)
            params[key] = value
    if after:
        # The range on time is what the index seeks; the OR settles ties on time.
        conds.append(f'{time} >= :after_time AND ({time} > :after_time OR "id" > :after_id)')
    return (f" WHERE {' AND '.join(conds)}" if conds else ""), params


# ORDER BY inside an aggregate's arguments arrived in SQLite 3.44.
ORDERED_AGGREGATES = sqlite3.sqlite_version_info >= (3, 44, 0)


def batch_sql(ds: Dataset, fmt: ExportFormat, filters: Filters, after: bool) -> str:
    """One batch: the finished lines of the next :n matching rows in (time, id) order, as one
    value, and how many rows they are.

    SQLite joining the lines saves Python a tuple, a bytes object and a join per row. Where
    SQLite can say so (3.44+), the aggregate is told the order outright; before that, the
    subquery's LIMIT keeps it from being flattened, so group_concat() gets its rows in
    order, and the byte-level tests hold SQLite to that.
    """
    where, _ = _where(ds, filters, after)
    time, t = quote_name(ds.time_column), quote_name(ds.name)
    ordered = " ORDER BY k_time, k_id" if ORDERED_AGGREGATES else ""
    return (
        f"SELECT CAST(group_concat(line, ''{ordered}) AS BLOB), count(*) FROM ("
        f'SELECT {line_sql(ds, fmt)} AS line, {time} AS k_time, "id" AS k_id '
        f'FROM {t}{where} ORDER BY {time}, "id" LIMIT :n)'
    )


def key_sql(ds: Dataset, filters: Filters, after: bool) -> str:
    """The (time, id) key of the matching row :skip rows on, read from an index alone when
    the filters allow; it marks where the next batch starts."""
    where, _ = _where(ds, filters, after)
    time = quote_name(ds.time_column)
    return (
        f'SELECT {time}, "id" FROM {quote_name(ds.name)}{where} '
        f'ORDER BY {time}, "id" LIMIT 1 OFFSET :skip'
    )


def _open_store(store_path: str | Path) -> sqlite3.Connection:
    try:
        return sq.connect(store_path, readonly=True)
    except sqlite3.Error as e:
        raise StorageError(f"could not open the Silver store: {e}") from e


def export_to_file(
    store_path: str | Path | SilverBackend,
    dataset: str,
    fmt: ExportFormat | str,
    target: Target,
    *,
    filters: Filters = Filters(),  # frozen, so sharing it is safe
    limit: int,
    compression: Compression | str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = 5000,
    copy_to: str | Path | None = None,
) -> ExportResult:
    """Write at most `limit` matching rows to `target` from one consistent snapshot.

    `target` is the job's ExportWriter (the caller commits or aborts it) or a path (fsynced
    here). `truncated` says whether more rows matched. On ExportCancelled or an error, a
    path is left for the caller to delete. `copy_to` (not for parquet) also gets every byte
    of the file as it is written, unsynced, so that the CLI's `-o` needs no second pass over
    the finished file; a copy that cannot be written is dropped (`copied` False).

    `store_path` is a SQLite store's file, or any Silver store (the port), which then
    exports itself: the service hands its store here, so wrappers of this function see
    every backend's exports.
    """
    if not isinstance(store_path, (str, os.PathLike)):
        return store_path.export(
            dataset,
            fmt,
            target,
            filters=filters,
            limit=limit,
            compression=compression,
            should_stop=should_stop,
            on_progress=on_progress,
            batch_size=batch_size,
            copy_to=copy_to,
        )
    ds, fmt = get_dataset(dataset), ExportFormat(fmt)
    if fmt is ExportFormat.PARQUET:  # its own writer; imported here so CSV never loads Arrow
        from .parquet_sqlite import export_parquet

        return export_parquet(
            store_path,
            dataset,
            target,
            filters=filters,
            limit=limit,
            should_stop=should_stop,
            on_progress=on_progress,
            batch_size=batch_size,
        )
    gzipped = bool(compression) and Compression(compression) is Compression.GZIP
    db = _open_store(store_path)

    def fill(writer: BackgroundWriter) -> tuple[int, bool]:
        batches, size = _Batches(db, ds, fmt, filters), max(1, batch_size)
        with Readers(db, pin(db, store_path, READERS), batches.render) as r:
            rendered = _Rendered(batches, r, limit, size)
            return pump(rendered, writer, limit, size, should_stop, on_progress)

    try:
        with closing(db), sq.snapshot(db):
            return write_export(target, copy_to, gzipped, header(ds, fmt), fill)
    except sqlite3.Error as e:
        raise StorageError(f"could not read the Silver store: {e}") from e


def write_export(
    target: Target,
    copy_to: str | Path | None,
    gzipped: bool,
    head: bytes,
    fill: Callable[[BackgroundWriter], tuple[int, bool]],
) -> ExportResult:
    """The file side of a CSV or JSONL export, the same for every Silver backend: `head`, then
    what `fill` puts (returning rows and truncated), through gzip if asked, hashed, teed to
    `copy_to`, on the writer thread. The caller holds its store's snapshot around it."""
    try:
        with open_target(target) as raw, open_copy(copy_to) as copy:
            sink = HashingSink(raw, copy)
            out: Any = sink
            if gzipped:
                out = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
            writer = BackgroundWriter(out)
            try:
                writer.put(head)
                rows, truncated = fill(writer)
            finally:
                writer.close()
            if gzipped:
                out.close()  # writes the gzip trailer into the sink
    except OSError as e:
        # The message reaches clients in the job document: no server paths in it.
        raise StorageError(f"could not write the export file: {e.strerror or e}") from e
    copied = copy_to is not None and sink.copy is not None
    return ExportResult(rows, sink.bytes, sink.sha.hexdigest(), truncated, copied)


class _Batches:
    """The matching rows in (time, id) order, read a batch at a time by key (keyset paging):
    each batch is one statement that starts after the last row of the one before, so every
    batch costs the same however far into the export it is.

    The batches are planned on the export's connection, from the time index alone (cheap),
    ahead of rendering them, so that the readers can render several at once."""

    def __init__(self, conn: sqlite3.Connection, ds: Dataset, fmt: ExportFormat, f: Filters):
        self.conn, self.name = conn, ds.name
        self.params = _where(ds, f, after=False)[1]
        self.batch = [batch_sql(ds, fmt, f, after) for after in (False, True)]
        self.key = [key_sql(ds, f, after) for after in (False, True)]
        self.after: dict[str, Any] = {}  # the last planned row's key once a batch is planned

    def plan(self, limit: int, batch_size: int) -> Iterator[tuple[str, dict[str, Any], bool]]:
        """(SQL, parameters, full) of each batch up to `limit` rows; `full`: it has its
        whole batch of rows, so another batch may follow. `more` holds from each yield on."""
        planned = 0
        while planned < limit:
            n = min(batch_size, limit - planned)
            sql, params = self.batch[bool(self.after)], {**self.params, **self.after, "n": n}
            last = self._key(n - 1)
            if last is not None:
                self.after = last
            yield sql, params, last is not None
            if last is None:  # fewer than n rows left: this batch is the last
                return
            planned += n

    @staticmethod
    def render(conn: sqlite3.Connection, batch: tuple[str, dict[str, Any], bool]) -> Any:
        """The finished lines of one planned batch and how many rows they are."""
        sql, params, full = batch
        data, count = conn.execute(sql, params).fetchone()
        if full and count != params["n"]:  # cannot happen within one snapshot
            raise StorageError("the rows changed while they were being exported")
        return data or b"", count

    def more(self) -> bool:
        """Whether any row follows the last one planned."""
        return self._key(0) is not None

    def _key(self, skip: int) -> dict[str, Any] | None:
        sql = self.key[bool(self.after)]
        row = self.conn.execute(sql, {**self.params, **self.after, "skip": skip}).fetchone()
        return None if row is None else {"after_time": row[0], "after_id": row[1]}


class _Rendered:
    """The planned batches as the readers render them, in order: what `pump` reads."""

    def __init__(self, batches: _Batches, readers: Readers, limit: int, batch_size: int):
        self.name, self.more = batches.name, batches.more
        self.results = readers.results(batches.plan(limit, batch_size))

    def read(self, n: int) -> tuple[bytes, int]:
        """The next batch, which `pump` asks for with the `n` it was planned with."""
        return next(self.results, (b"", 0))


def pump(
    batches: Any,
    writer: BackgroundWriter,
    limit: int,
    batch_size: int,
    should_stop: Callable[[], bool],
    on_progress: Callable[[int], None] | None,
) -> tuple[int, bool]:
    """Move batches of finished lines to the writer; (rows written, truncated).

    `batches` has `name`, `read(n)` -> (bytes, rows) and `more()`: the SQLite readers' planned
    batches (`_Rendered`) or the PostgreSQL export's cursor. Cancellation, progress and the
    look past the limit are the same for both backends, so they live here once."""
    rows = 0
    while rows < limit:
        n = min(batch_size, limit - rows)
        data, count = batches.read(n)
        if not count:
            return rows, False
        if should_stop():
            raise ExportCancelled(f"export of {batches.name} cancelled after {rows} rows")
        writer.put(data)
        rows += count
        if on_progress is not None:
            on_progress(rows)
        if count < n:
            return rows, False
    return rows, batches.more()  # `limit` rows written: truncated if another one matches


def wallet_sql(fmt: ExportFormat) -> str:
    """Token transfers from or to `:wallet`, via the lower(address) indexes, at most `:n`.

    Each branch reads at most :n rows in index order, so a busy wallet costs O(n), not a scan
    and a sort of all its transfers.
    """
    ds = get_dataset(WALLET_DATASET)
    t, time = quote_name(ds.name), quote_name(ds.time_column)
    branches = " UNION ALL ".join(
        f"SELECT id FROM (SELECT id FROM {t} WHERE lower({quote_name(col)}) = :wallet "
        f'ORDER BY {time}, "id" LIMIT :n)'
        for col in WALLET_COLUMNS
    )
    return (
        f"SELECT CAST({line_sql(ds, fmt)} AS BLOB) FROM {t} WHERE id IN ({branches}) "
        f'ORDER BY {time}, "id" LIMIT :n'
    )


def iter_wallet_export(
    store_path: str | Path | SilverBackend,
    wallet: str,
    fmt: ExportFormat | str,
    *,
    max_records: int,
    batch_size: int = 5000,
) -> Iterator[bytes]:
    """The legacy synchronous wallet export, streamed in chunks from one snapshot; a store
    that is not a SQLite file (the port) streams its own."""
    if not isinstance(wallet, str) or not WALLET.fullmatch(wallet):
        raise ValidationError("the wallet must be 0x followed by 40 hex digits", field="wallet")
    if not isinstance(store_path, (str, os.PathLike)):
        yield from store_path.iter_wallet(
            wallet, fmt, max_records=max_records, batch_size=batch_size
        )
        return
    fmt = ExportFormat(fmt)
    db = _open_store(store_path)
    try:
        with closing(db), sq.snapshot(db):
            if head := header(get_dataset(WALLET_DATASET), fmt):
                yield head
            cursor = db.execute(wallet_sql(fmt), {"wallet": wallet.lower(), "n": max_records})
            while batch := cursor.fetchmany(batch_size):
                yield b"".join([r[0] for r in batch])
    except sqlite3.Error as e:
        raise StorageError(f"could not read the Silver store: {e}") from e
