"""Parquet exports from the PostgreSQL Silver store, through the backend-agnostic parquet.py.

parquet.py needs two things of a backend: the decimal shapes over the file's rows, and
batches of stored values in export order. Both are read in one snapshot. The values come
as the CSV lines PostgreSQL already renders (postgres_rendering.py), parsed by Arrow's C CSV
reader with the column types given: no Python object per value, and the CSV rules keep null
(an empty unquoted field) apart from the empty string (`""`), and every character exact.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import StorageError
from ..model import ExportFormat
from .catalog import ColumnKind, Dataset
from .parquet import DecimalShape, HashingFile, write_parquet
from .parquet_sqlite import _capped
from .postgres_export import Lines, ordered_sql, snapshot
from .rendering import quote_name
from .target import Target, open_target
from .writers import ExportCancelled, ExportResult, Filters


def shapes_sql(ds: Dataset, filters: Filters) -> tuple[str, dict[str, Any]] | None:
    """The widest integer part and scale of each decimal column over the export's rows.
    Decimal text is validated (-?(0|[1-9][0-9]*)(.[0-9]+)?): a leading 0 adds no digit."""
    decimals = [c for c in ds.columns if c.kind is ColumnKind.DECIMAL]
    if not decimals:
        return None
    inner, outer = [], []
    for i, c in enumerate(decimals):
        x = quote_name(c.name)
        inner.append(
            f"strpos({x}, '.') AS d{i}, length({x}) AS n{i}, "
            f"(left({x}, 1) = '-')::int AS s{i}, "
            f"(substr({x}, 1 + (left({x}, 1) = '-')::int, 1) = '0')::int AS z{i}"
        )
        outer.append(f"max(CASE WHEN d{i} > 0 THEN d{i} - 1 ELSE n{i} END - s{i} - z{i})")
        outer.append(f"max(CASE WHEN d{i} > 0 THEN n{i} - d{i} ELSE 0 END)")
    sql, params = ordered_sql(ds, ", ".join(inner), filters)
    return f"SELECT {', '.join(outer)} FROM ({sql}) AS rows", params


def read_shapes(conn: Any, ds: Dataset, filters: Filters, limit: int) -> dict[str, DecimalShape]:
    found = shapes_sql(ds, filters)
    if found is None:
        return {}
    sql, params = found
    values = conn.execute(sql, {**params, "n": limit}).fetchone()
    decimals = [c for c in ds.columns if c.kind is ColumnKind.DECIMAL]
    return {
        c.name: DecimalShape(values[2 * i] or 0, values[2 * i + 1] or 0)
        for i, c in enumerate(decimals)
    }


def _arrow_type(kind: ColumnKind) -> pa.DataType:
    if kind is ColumnKind.INTEGER:
        return pa.int64()
    if kind is ColumnKind.BOOLEAN:
        return pa.bool_()
    return pa.string()  # decimals and times too: parquet.typed_batch casts their exact text


class StoredBatches:
    """Batches of stored values from the lines cursor, parsed by Arrow's CSV reader."""

    def __init__(self, lines: Lines, ds: Dataset, batch_size: int):
        self.lines, self.batch_size = lines, batch_size
        self.names = list(ds.column_names)
        self.convert = pacsv.ConvertOptions(
            column_types={c.name: _arrow_type(c.kind) for c in ds.columns},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # "" is the empty string, as the CSV rules say
            true_values=["true"],
            false_values=["false"],
        )
        self.parse = pacsv.ParseOptions(newlines_in_values=True)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            data, count = self.lines.read(self.batch_size)
            if not count:
                return
            read = pacsv.ReadOptions(
                column_names=self.names, block_size=len(data) + 1, use_threads=False
            )
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=read,
                parse_options=self.parse,
                convert_options=self.convert,
            )
            yield from table.to_batches()


def export_parquet(
    url: str,
    ds: Dataset,
    target: Target,
    *,
    filters: Filters,
    limit: int,
    should_stop: Callable[[], bool],
    on_progress: Callable[[int], None] | None,
    batch_size: int,
) -> ExportResult:
    """Write at most `limit` matching rows to `target` as Parquet, from one snapshot."""
    state = {"seen": 0, "more": False}

    def check(rows: int) -> None:
        if should_stop():
            raise ExportCancelled(f"export of {ds.name} cancelled after {rows} rows")

    try:
        with snapshot(url) as conn, open_target(target) as raw:
            shapes = read_shapes(conn, ds, filters, limit)
            lines = Lines(conn, ds, ExportFormat.CSV, filters, limit)
            out = HashingFile(raw)
            rows = write_parquet(
                out,
                ds,
                shapes,
                _capped(iter(StoredBatches(lines, ds, max(1, batch_size))), limit, state),
                before_batch=check,
                after_batch=on_progress or (lambda rows: None),
            )
    except OSError as e:
        raise StorageError(f"could not write the export file: {e.strerror or e}") from e
    except pa.ArrowInvalid as e:
        raise StorageError(f"a stored value does not fit its Parquet type: {e}") from e
    return ExportResult(rows, out.bytes, out.sha.hexdigest(), state["more"])
