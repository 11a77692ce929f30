"""Parquet files from the Silver catalog: typed columns, exact decimals, bounded row groups.

This module knows Arrow and Parquet but no database: a Silver backend hands it batches of
the values as stored (integers, and text for decimals, times and JSON), in export order,
plus the shape of each decimal column over the rows of this file; it types them and writes
the file. `parquet_sqlite.py` is the SQLite backend's side; a PostgreSQL store supplies the
same two things.

Why these choices:
- A decimal column is DECIMAL(p, s) with the smallest p <= 38 that holds every value in the
  file (s the largest scale present), else STRING with the exact text: DuckDB reads a wider
  decimal as a float and Polars refuses one, so a wider type would lose the exactness we
  promise. The text becomes a decimal through Arrow's own exact parser, never a float.
- Row groups of ROW_GROUP_ROWS rows: a group is held whole (as Arrow data, then encoded)
  before it is written, so its size is what bounds memory. 64Ki rows of token_transfers are
  about 20 MB; measured peak RSS of a 1M-row export was 267 MB with 128Ki-row groups and
  226 MB with 64Ki (bench/parquet.py), against pyarrow's default of 1Mi rows that would hold
  a whole export. Readers still get groups large enough to scan well (DuckDB writes 122,880).
- Same rows, same bytes: the writer options are fixed, there is no timestamp or random id in
  the footer, and row group boundaries depend on row counts only (not on fetch batches).
  `created_by` names the pyarrow version, so the bytes are stable for one installed version.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .catalog import Column, ColumnKind, Dataset

MAX_PRECISION = 38
ROW_GROUP_ROWS = 65_536
ZSTD_LEVEL = 3  # zstd's own default: most of the size gain for little CPU
SYNC_EVERY = 16 << 20  # bytes between syncs: the disk works while the next groups are encoded
TIMESTAMP = pa.timestamp("ms", tz="UTC")
UNIQUE_TEXT = re.compile(r"hash|address")


@dataclass(frozen=True, slots=True)
class DecimalShape:
    """The widest value of one decimal column in a file: digits before and after the point.

    A leading "0" before the point is not a digit of precision ("0.001" is DECIMAL(3, 3)).
    """

    int_digits: int
    scale: int

    def arrow_type(self) -> pa.DataType:
        precision = max(1, self.int_digits + self.scale)
        if precision > MAX_PRECISION:
            return pa.string()  # the exact text: no reader-safe decimal type holds it
        return pa.decimal128(precision, self.scale)


def column_type(column: Column, shape: DecimalShape | None) -> pa.DataType:
    kind = column.kind
    if kind is ColumnKind.INTEGER:
        return pa.int64()
    if kind is ColumnKind.BOOLEAN:
        return pa.bool_()
    if kind is ColumnKind.TIME:
        return TIMESTAMP
    if kind is ColumnKind.DECIMAL:
        return (shape or DecimalShape(0, 0)).arrow_type()
    return pa.string()  # text, choices, and decoded_fields as its compact JSON text


def arrow_schema(ds: Dataset, shapes: dict[str, DecimalShape]) -> pa.Schema:
    """One field per catalog column, in export order, nullable as the catalog says."""
    return pa.schema(
        [
            pa.field(c.name, column_type(c, shapes.get(c.name)), nullable=c.nullable)
            for c in ds.columns
        ]
    )


def typed_batch(raw: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast a batch of stored values (as the backend returns them) to the file's types.

    Arrow's string-to-decimal cast parses the text exactly and refuses to drop a digit;
    canonical UTC time text casts to a millisecond timestamp exactly.
    """
    arrays = []
    for field, array in zip(schema, raw.columns, strict=True):
        if array.type != field.type:
            array = pc.cast(array, field.type)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class HashingFile:
    """The file-like target pyarrow writes to: counts and hashes every byte on its way to the
    disk, so the sha256 needs no second read of the file."""

    def __init__(self, raw: Any):
        self.raw = raw  # an open_target sink: write and sync
        self.sha = hashlib.sha256()
        self.bytes = self.synced = 0
        self.closed = False

    def write(self, data: Any) -> int:
        data = memoryview(data)
        self.sha.update(data)
        self.bytes += data.nbytes
        self.raw.write(data)
        if self.bytes - self.synced >= SYNC_EVERY:
            self.raw.sync()
            self.synced = self.bytes
        return data.nbytes

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        pass  # the target's owner makes the file durable

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True  # the caller owns (syncs and closes) the raw file


def write_parquet(
    out: HashingFile,
    ds: Dataset,
    shapes: dict[str, DecimalShape],
    batches: Iterable[pa.RecordBatch],
    *,
    before_batch: Callable[[int], None] = lambda rows: None,
    after_batch: Callable[[int], None] = lambda rows: None,
) -> int:
    """Write every row of `batches` (stored values, in order) as one Parquet file; rows written.

    `before_batch(rows so far)` may raise to stop (cancellation); `after_batch` reports
    progress. At most one row group of typed rows is held at a time.
    """
    schema = arrow_schema(ds, shapes)
    writer = pq.ParquetWriter(
        out,
        schema,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=dictionary_columns(ds),
        write_statistics=True,
        version="2.6",
    )
    pending: list[pa.RecordBatch] = []
    pending_rows = rows = 0
    reader = Prefetch(batches)
    try:
        for raw in reader:
            before_batch(rows)
            if not raw.num_rows:
                continue
            batch = typed_batch(raw, schema)
            pending.append(batch)
            pending_rows += batch.num_rows
            rows += batch.num_rows
            while pending_rows >= ROW_GROUP_ROWS:
                table = pa.Table.from_batches(pending, schema=schema)
                pending = table.slice(ROW_GROUP_ROWS).to_batches()
                pending_rows -= ROW_GROUP_ROWS
                _write_group(writer, table.slice(0, ROW_GROUP_ROWS))
                del table  # only the rest's own batches stay alive
            after_batch(rows)
        if pending_rows:
            _write_group(writer, pa.Table.from_batches(pending, schema=schema))
    finally:
        reader.close()
        writer.close()
    return rows


class Prefetch:
    """Pulls the backend's batches on a second thread, so that reading the next batch
    overlaps typing and encoding this one (both release the GIL). At most `depth` batches
    wait, so memory stays flat; an error in the source is raised in the consumer."""

    def __init__(self, source: Iterable[Any], depth: int = 2):
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(iter(source),), name="silver-parquet-reader", daemon=True
        )
        self.thread.start()

    def _run(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                if not self._put(("batch", item)):
                    return
            self._put(("end", None))
        except BaseException as e:
            self._put(("error", e))

    def _put(self, item: tuple[str, Any]) -> bool:
        """Wait for room, unless the consumer has gone (then False)."""
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        while True:
            kind, value = self.queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        """Stop the reader thread and wait for it: the caller closes the source after."""
        self.stopped.set()
        self.thread.join()


def _write_group(writer: pq.ParquetWriter, table: pa.Table) -> None:
    """One row group from one contiguous chunk per column: pages then depend on the rows
    alone, not on how the backend happened to batch them."""
    writer.write_table(table.combine_chunks(), row_group_size=ROW_GROUP_ROWS)


def dictionary_columns(ds: Dataset) -> list[str]:
    """Dictionary-encode the text that repeats (targets, networks, symbols, choices); hashes,
    addresses and JSON are nearly unique per row, where a dictionary only costs time."""
    return [
        c.name
        for c in ds.columns
        if c.kind in (ColumnKind.TEXT, ColumnKind.CHOICE) and not UNIQUE_TEXT.search(c.name)
    ]
