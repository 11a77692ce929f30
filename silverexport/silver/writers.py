"""JSONL and CSV exports, formatted by SQLite itself and streamed to a hashed file.

Each row arrives from SQLite as one finished line (built by SQL generated from the catalog),
so Python only joins, hashes and writes bytes per batch. That is what makes the export run
near the sqlite3 CLI's speed; tests/silver prove the bytes equal what Python's `csv.writer`
and `json.dumps(..., ensure_ascii=False, separators=(",", ":"))` would write.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .. import sqlite as sq
from ..errors import SilverExportError, StorageError, ValidationError
from ..model import Compression, ExportFormat
from .catalog import Column, ColumnKind, Dataset, get_dataset
from .store import CSV_QUOTE, WALLET_COLUMNS, WALLET_DATASET, quote_name

GZIP_LEVEL = 6
WALLET = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
CR, LF = "\r", "\n"


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


class ExportCancelled(SilverExportError):
    """The export stopped because `should_stop()` said so; the caller removes the file."""

    code = "cancelled"


# -- SQL that renders one line per row -------------------------------------------------------


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(x: str) -> str:
    return f"""'"' || replace({x}, '"', '""') || '"'"""


def _csv_fast(c: Column, position: int) -> str:
    """A printf() argument; the row's CSV_QUOTE bit for this column says whether to quote."""
    x = quote_name(c.name)
    if c.kind is ColumnKind.TEXT:
        return f"CASE WHEN {CSV_QUOTE} & {1 << position} THEN {_quoted(x)} ELSE {x} END"
    if c.kind is ColumnKind.BOOLEAN:
        return f"CASE {x} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END"
    if c.kind is ColumnKind.JSON_OBJECT:
        # Compact JSON never holds CR, LF or NUL (json.dumps escapes them), and any comma in
        # it sits in or between strings: a quote character is the one sign it needs quoting.
        return f"""CASE WHEN instr({x}, '"') THEN {_quoted(x)} ELSE {x} END"""
    return x  # numbers, decimals, times, choices: nothing to quote; printf renders NULL as ''


def _csv_slow(c: Column, position: int) -> str:
    """A NUL-safe field expression that decides quoting itself, as csv.writer does."""
    x = quote_name(c.name)
    if c.kind is ColumnKind.TEXT:
        # instr, not GLOB: GLOB stops at a NUL character and would miss a comma after it.
        needs = " OR ".join(f"instr({x}, {_lit(ch)})" for ch in (",", '"', CR, LF))
        expr = f"CASE WHEN {needs} THEN {_quoted(x)} ELSE {x} END"
    else:
        expr = _csv_fast(c, position)
    return f"ifnull({expr}, '')" if c.nullable else expr


def _json_value(c: Column) -> str:
    x = quote_name(c.name)
    if c.kind is ColumnKind.BOOLEAN:
        return f"json(CASE {x} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    if c.kind is ColumnKind.JSON_OBJECT:
        # json() returns compact input text unchanged (numbers and escapes kept as written);
        # the byte-level property test holds SQLite to that.
        return f"json({x})"
    return x  # json_object() escapes text exactly like json.dumps(ensure_ascii=False)


def line_sql(ds: Dataset, fmt: ExportFormat) -> str:
    """A SQL expression giving the finished, terminated line for one row of `ds`.

    A CSV line is one printf() call guided by the row's CSV_QUOTE bits: much faster than a
    chain of || with instr() tests, which only rows with a NUL in their text take.
    """
    if fmt is ExportFormat.CSV:
        cols = list(enumerate(ds.columns))
        fast = ", ".join(_csv_fast(c, i) for i, c in cols)
        template = _lit(",".join(["%s"] * len(cols)) + CR + LF)
        slow = " || ',' || ".join(_csv_slow(c, i) for i, c in cols) + f" || {_lit(CR + LF)}"
        return f"CASE WHEN {CSV_QUOTE} >= 0 THEN printf({template}, {fast}) ELSE {slow} END"
    pairs = ", ".join(f"{_lit(c.name)}, {_json_value(c)}" for c in ds.columns)
    return f"json_object({pairs}) || {_lit(LF)}"


def header(ds: Dataset, fmt: ExportFormat) -> bytes:
    return (",".join(ds.column_names) + CR + LF).encode() if fmt is ExportFormat.CSV else b""


def select_sql(ds: Dataset, fmt: ExportFormat, filters: Filters) -> tuple[str, dict[str, Any]]:
    """The filtered query in (time, id) order, bounded by the `:limit` parameter."""
    time = quote_name(ds.time_column)
    conds, params = [], {}
    for cond, key, value in (
        ('"target_id" = :target_id', "target_id", filters.target_id),
        ('"network" = :network', "network", filters.network),
        (f"{time} >= :from_", "from_", filters.from_),
        (f"{time} < :to", "to", filters.to),
    ):
        if value is not None:
            conds.append(cond)
            params[key] = value
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    sql = (
        f"SELECT CAST({line_sql(ds, fmt)} AS BLOB) FROM {quote_name(ds.name)}{where} "
        f'ORDER BY {time}, "id" LIMIT :limit'
    )
    return sql, params


# -- writing ---------------------------------------------------------------------------------


class _HashingSink:
    """A file-like target that counts and hashes the bytes that reach the disk."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.bytes += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class _BackgroundWriter:
    """Writes batches on a second thread, so that hashing, gzip and the disk overlap SQLite
    building the next batch (all of them release the GIL). Two batches in flight at most,
    so memory stays flat; a write error is raised at the next `put` or at `close`."""

    def __init__(self, out: Any):
        self.out = out
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="silver-export-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.error is None:  # after a failure, keep draining so `put` never blocks
                try:
                    self.out.write(data)
                except BaseException as e:
                    self.error = e

    def put(self, data: bytes) -> None:
        self._raise()
        self.queue.put(data)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def _open_store(store_path: str | Path) -> Any:
    try:
        return sq.connect(store_path, readonly=True)
    except sqlite3.Error as e:
        raise StorageError(f"could not open the Silver store: {e}") from e


def export_to_file(
    store_path: str | Path,
    dataset: str,
    fmt: ExportFormat | str,
    path: str | Path,
    *,
    filters: Filters = Filters(),  # frozen, so sharing it is safe
    limit: int,
    compression: Compression | str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = 5000,
) -> ExportResult:
    """Write at most `limit` matching rows to `path` from one consistent snapshot, fsynced.

    Fetches limit + 1 rows so that `truncated` says whether more matched. On ExportCancelled
    or an error, `path` is left for the caller to delete.
    """
    ds, fmt = get_dataset(dataset), ExportFormat(fmt)
    gzipped = bool(compression) and Compression(compression) is Compression.GZIP
    sql, params = select_sql(ds, fmt, filters)
    params["limit"] = limit + 1
    db = _open_store(store_path)
    try:
        with closing(db.conn), sq.snapshot(db), open(path, "wb") as raw:
            sink = _HashingSink(raw)
            out: Any = sink
            if gzipped:
                out = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
            writer = _BackgroundWriter(out)
            try:
                writer.put(header(ds, fmt))
                rows, truncated = _pump(
                    db.conn.execute(sql, params),
                    writer,
                    limit,
                    batch_size,
                    should_stop,
                    on_progress,
                    ds.name,
                )
            finally:
                writer.close()
            if gzipped:
                out.close()  # writes the gzip trailer into the sink
            raw.flush()
            os.fsync(raw.fileno())
    except OSError as e:
        # The message reaches clients in the job document: no server paths in it.
        raise StorageError(f"could not write the export file: {e.strerror or e}") from e
    except sqlite3.Error as e:
        raise StorageError(f"could not read the Silver store: {e}") from e
    return ExportResult(rows, sink.bytes, sink.sha.hexdigest(), truncated)


def _pump(
    cursor: sqlite3.Cursor,
    writer: _BackgroundWriter,
    limit: int,
    batch_size: int,
    should_stop: Callable[[], bool],
    on_progress: Callable[[int], None] | None,
    name: str,
) -> tuple[int, bool]:
    """Move finished lines from SQLite to the writer in batches; (rows written, truncated)."""
    rows = 0
    while batch := cursor.fetchmany(batch_size):
        if should_stop():
            raise ExportCancelled(f"export of {name} cancelled after {rows} rows")
        if rows + len(batch) > limit:
            writer.put(b"".join([r[0] for r in batch[: limit - rows]]))
            return limit, True
        writer.put(b"".join([r[0] for r in batch]))
        rows += len(batch)
        if on_progress is not None:
            on_progress(rows)
    return rows, False


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
    store_path: str | Path,
    wallet: str,
    fmt: ExportFormat | str,
    *,
    max_records: int,
    batch_size: int = 5000,
) -> Iterator[bytes]:
    """The legacy synchronous wallet export, streamed in chunks from one snapshot."""
    if not isinstance(wallet, str) or not WALLET.fullmatch(wallet):
        raise ValidationError("the wallet must be 0x followed by 40 hex digits", field="wallet")
    fmt = ExportFormat(fmt)
    db = _open_store(store_path)
    try:
        with closing(db.conn), sq.snapshot(db):
            if head := header(get_dataset(WALLET_DATASET), fmt):
                yield head
            cursor = db.conn.execute(wallet_sql(fmt), {"wallet": wallet.lower(), "n": max_records})
            while batch := cursor.fetchmany(batch_size):
                yield b"".join([r[0] for r in batch])
    except sqlite3.Error as e:
        raise StorageError(f"could not read the Silver store: {e}") from e
