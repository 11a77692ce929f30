"""The Silver store: one STRICT SQLite table per dataset, written only by validated batches."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Self

from .. import sqlite as sq
from ..errors import StorageError, ValidationError
from ..timeutil import normalize_time
from . import exactjson
from .catalog import DATASETS, Column, ColumnKind, Dataset, get_dataset
from .rendering import ESCAPE_MASK, escape_mask_sql, quote_name

DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
INT64 = (-(2**63), 2**63 - 1)
_INT64_MIN, _INT64_MAX = INT64
PROGRESS_EVERY = 10_000  # lines between progress callbacks

# The legacy wallet export matches these token_transfers columns case-insensitively; the
# expression indexes below let it do so without a full scan (the query must use lower(col)).
WALLET_DATASET = "token_transfers"
WALLET_COLUMNS = ("from_address", "to_address")

# Stores made before the escape mask was a generated column kept a hint that ingest wrote
# (`_csv_quote`, which went stale when another program changed a row): opening one rebuilds
# its tables, as it does a table whose mask is computed by another expression than today's.


def schema_sql(ds: Dataset) -> list[str]:
    """DDL from the catalog. The rowid `id` ends every index, so (time, id) order is free."""
    defs = []
    for c in ds.columns:
        if c.name == "id":
            defs.append('"id" INTEGER PRIMARY KEY')
            continue
        d = f"{quote_name(c.name)} {c.kind.sql_type}{'' if c.nullable else ' NOT NULL'}"
        if c.kind is ColumnKind.BOOLEAN:
            d += f" CHECK ({quote_name(c.name)} IN (0, 1))"
        elif c.kind is ColumnKind.CHOICE:
            d += f" CHECK ({quote_name(c.name)} IN ({', '.join(repr(v) for v in c.choices)}))"
        defs.append(d)
    # Computed by SQLite on every INSERT and UPDATE, by whatever program: never stale.
    defs.append(f"{ESCAPE_MASK} INTEGER GENERATED ALWAYS AS ({escape_mask_sql(ds)}) STORED")
    t, time = quote_name(ds.name), quote_name(ds.time_column)
    stmts = [
        f"CREATE TABLE IF NOT EXISTS {t} ({', '.join(defs)}) STRICT",
        f"CREATE INDEX IF NOT EXISTS {quote_name(ds.name + '_by_time')} ON {t} ({time})",
    ]
    for key in ("target_id", "network"):
        name = quote_name(f"{ds.name}_by_{key}")
        stmts.append(f"CREATE INDEX IF NOT EXISTS {name} ON {t} ({quote_name(key)}, {time})")
    if ds.name == WALLET_DATASET:
        for col in WALLET_COLUMNS:
            name = quote_name(f"{ds.name}_by_lower_{col}")
            stmts.append(
                f"CREATE INDEX IF NOT EXISTS {name} ON {t} (lower({quote_name(col)}), {time})"
            )
    return stmts


def create_or_upgrade(db: Any, ds: Dataset) -> None:
    """Create `ds`'s table and indexes, first rebuilding a table of an older layout (its rows
    copied; the mask computed anew). Runs inside the caller's write transaction, so an
    upgrade happens whole or not at all."""
    t = quote_name(ds.name)
    found = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [ds.name]
    ).fetchone()
    if found is not None and escape_mask_sql(ds) not in found[0]:
        old = quote_name(ds.name + "_legacy")
        names = ", ".join(quote_name(n) for n in ds.column_names)
        db.execute(f"ALTER TABLE {t} RENAME TO {old}")
        for (index,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            [ds.name + "_legacy"],
        ).fetchall():
            db.execute(f"DROP INDEX {quote_name(index)}")
        db.execute(schema_sql(ds)[0])
        db.execute(f"INSERT INTO {t} ({names}) SELECT {names} FROM {old}")
        db.execute(f"DROP TABLE {old}")
    for stmt in schema_sql(ds):
        db.execute(stmt)


# -- validation: one function per column kind, each returning the stored value ---------------
# Each starts with a fast path for the common valid value (a plain str or int, checked in as
# few steps as Python allows); anything else takes the full checks, which word every refusal.


def _text(value: Any) -> str:
    if type(value) is str and value.isascii():
        return value  # ASCII text holds no surrogate: nothing more to check
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_json_type(value)}")
    _check_utf8(value)
    return value


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text holds a lone surrogate, which is not valid Unicode") from None


def _integer(value: Any) -> int:
    if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
        return value  # not a bool, nor an int subclass such as exactjson's NegativeZero
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a JSON integer, got {_json_type(value)}")
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"{value} does not fit in a signed 64-bit integer")
    return int(value)  # a plain int, also for -0


def _decimal(value: Any) -> str:
    if type(value) is str and DECIMAL.fullmatch(value):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a decimal string or JSON integer, got a boolean")
    if isinstance(value, int):
        return str(value)  # the integer's text: exactly as sent, -0 included (exactjson.py)
    if isinstance(value, float):
        raise ValueError(
            f"{value!r} is a JSON float, which has already lost exactness; "
            "send the decimal as a string"
        )
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {_json_type(value)}")
    if not DECIMAL.fullmatch(value):
        raise ValueError(
            f"{_show(value)} is not a decimal string (expected -?(0|[1-9][0-9]*)(.[0-9]+)?, "
            'e.g. "-12.5"; no exponent, no "+", no bare ".5")'
        )
    return value


def _time(value: Any) -> str:
    if isinstance(value, float):
        raise ValueError("expected an RFC 3339 string or integer epoch milliseconds, got a float")
    try:
        return normalize_time(value)
    except ValueError as e:
        shown = f"{_show(value)}: " if isinstance(value, str) else ""
        raise ValueError(f"{shown}{e}") from None


def _boolean(value: Any) -> int:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_json_type(value)}")
    return int(value)


def _json_object(value: Any) -> str:
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(value)}")
    try:
        text = exactjson.dumps_compact(value)  # numbers as written, never through a float
    except (ValueError, TypeError, RecursionError) as e:
        raise ValueError(f"not storable as JSON ({e})") from None
    _check_utf8(text)
    return text


def _choice(column: Column) -> Callable[[Any], str]:
    choices = column.choices

    def check(value: Any) -> str:
        if value not in choices or not isinstance(value, str):
            allowed = " or ".join(f'"{v}"' for v in column.choices)
            raise ValueError(f"expected {allowed}, got {_show(value)}")
        return value

    return check


def _bounded_text(column: Column) -> Callable[[Any], str]:
    longest = column.max_length

    def check(value: Any) -> str:
        if type(value) is str and value.isascii() and 1 <= len(value) <= longest:
            return value
        text = _text(value)
        if not 1 <= len(text) <= longest:
            raise ValueError(
                f"must be 1 to {column.max_length} characters long, not {len(text)}, "
                "so that a filter can select it"
            )
        return text

    return check


def _check_for(column: Column) -> Callable[[Any], Any]:
    if column.choices:
        return _choice(column)
    if column.max_length is not None:
        return _bounded_text(column)
    return _CHECKS[column.kind]


_CHECKS: dict[ColumnKind, Callable[[Any], Any]] = {
    ColumnKind.INTEGER: _integer,
    ColumnKind.DECIMAL: _decimal,
    ColumnKind.TIME: _time,
    ColumnKind.BOOLEAN: _boolean,
    ColumnKind.JSON_OBJECT: _json_object,
    ColumnKind.TEXT: _text,
}


def _json_type(value: Any) -> str:
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):  # isinstance: parsed numbers are subclasses (exactjson)
            return name
    return type(value).__name__


_JSON_TYPES = (
    (bool, "a boolean"),  # before int: a bool is an int to isinstance
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (dict, "an object"),
    (list, "an array"),
    (type(None), "null"),
)


def _show(value: Any, width: int = 60) -> str:
    """A short JSON rendering for messages; escapes keep control characters visible."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _null(optional: bool) -> None:
    """A missing or null value: None where allowed; the careful walk words the refusal."""
    if not optional:
        raise ValueError("required")


class RowChecker:
    """Turns one ingested object into a tuple in column order, or says what is wrong.

    A row is first checked in one comprehension; if anything in it is wrong, the same checks
    run again one column at a time, in the same order, to say which column and why.
    """

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.names = frozenset(ds.column_names)
        self.checks = [(c.name, c.nullable or c.name == "id", _check_for(c)) for c in ds.columns]

    def __call__(self, line: int, row: Any) -> tuple[Any, ...]:
        if type(row) is dict and self.names.issuperset(row):
            get = row.get
            try:
                return tuple(
                    [
                        _null(optional) if (value := get(name)) is None else check(value)
                        for name, optional, check in self.checks
                    ]
                )
            except ValueError:
                pass
        return self._walk(line, row)

    def _walk(self, line: int, row: Any) -> tuple[Any, ...]:
        if not isinstance(row, dict):
            raise ValidationError(
                f"line {line}: expected a JSON object, got {_json_type(row)}", field="line"
            )
        if row.keys() - self.names:
            name = sorted(str(k) for k in row.keys() - self.names)[0]
            raise ValidationError(
                f'line {line}, column "{name}": unknown column; {self.ds.name} has '
                f"{', '.join(self.ds.column_names)}",
                field=name,
            )
        values = []
        for name, optional, check in self.checks:
            value = row.get(name)
            if value is None:
                if not optional:
                    why = "is missing" if name not in row else "must not be null"
                    raise ValidationError(
                        f'line {line}, column "{name}": {why} (it is required)', field=name
                    )
                values.append(None)
                continue
            try:
                values.append(check(value))
            except ValueError as e:
                raise ValidationError(f'line {line}, column "{name}": {e}', field=name) from None
        return tuple(values)


def parse_json_lines(
    lines: Iterable[bytes | str], progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Any]]:
    """(line number, value) for every non-blank line; bad JSON names its line. Numbers keep
    the text they were sent with (see exactjson.py)."""
    consumed = 0
    for number, raw in enumerate(lines, 1):
        consumed += len(raw)
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(consumed)
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            value = exactjson.loads(text)
        except UnicodeDecodeError as e:
            raise ValidationError(f"line {number}: not UTF-8 ({e.reason})", field="line") from None
        except (ValueError, RecursionError) as e:
            raise ValidationError(f"line {number}: not valid JSON ({e})", field="line") from None
        yield number, value
    if progress is not None:
        progress(consumed)


class IngestEntryPoints:
    """What both Silver adapters offer on top of their own `_ingest(dataset, numbered rows)`:
    the row and JSON Lines entry points and the context manager, written once."""

    def close(self) -> None:
        raise NotImplementedError

    def _ingest(self, dataset: str, numbered: Iterable[tuple[int, Any]]) -> int:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ingest(self, dataset: str, rows: Iterable[dict[str, Any]], *, first_line: int = 1) -> int:
        """Validate and insert `rows` in one transaction: all of them, or none."""
        return self._ingest(dataset, enumerate(rows, first_line))

    def ingest_jsonl(
        self,
        dataset: str,
        lines: Iterable[bytes | str],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Ingest JSON Lines (blank lines skipped); `progress` gets the bytes read so far."""
        return self._ingest(dataset, parse_json_lines(lines, progress))


class SilverStore(IngestEntryPoints):
    """The Silver database under the data dir. Writes are serialised; exports open their own
    read-only connections (see writers.py), so they never wait on this object's lock."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sq.connect(self.path)
        self._lock = threading.Lock()
        with sq.immediate(self.db):
            for ds in DATASETS.values():
                create_or_upgrade(self.db, ds)

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self.db.close()

    def _ingest(self, dataset: str, numbered: Iterable[tuple[int, Any]]) -> int:
        ds = get_dataset(dataset)
        check = RowChecker(ds)
        cols = ", ".join(quote_name(n) for n in ds.column_names)
        marks = ", ".join("?" * len(ds.columns))
        sql = f"INSERT INTO {quote_name(ds.name)} ({cols}) VALUES ({marks})"
        line, rows, last_id = 0, 0, None

        def checked() -> Iterator[tuple[Any, ...]]:
            # Streams: rows go to SQLite as they are checked, so memory stays flat; the one
            # open transaction is what makes a late rejection undo the earlier rows.
            nonlocal line, rows, last_id
            for line, row in numbered:  # `line`, nonlocal: the messages below name it
                values = check(line, row)
                rows += 1
                last_id = values[0]
                yield values

        try:
            with self._lock, sq.immediate(self.db):
                self.db.executemany(sql, checked())
        except sqlite3.IntegrityError as e:
            if "UNIQUE" in str(e) or "PRIMARY KEY" in str(e):
                raise ValidationError(
                    f'line {line}, column "id": id {last_id} is already used in '
                    f"{ds.name} (by a stored row or an earlier line)",
                    field="id",
                ) from e
            raise ValidationError(f"line {line}: refused by the database ({e})") from e
        except sqlite3.Error as e:
            raise StorageError(f"could not write to the Silver store {self.path}: {e}") from e
        return rows

    def count(self, dataset: str) -> int:
        ds = get_dataset(dataset)
        return self.db.execute(f"SELECT count(*) FROM {quote_name(ds.name)}").fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in DATASETS}

    def export(self, dataset: str, fmt: Any, target: Any, **options: Any) -> Any:
        """An export from the file (`writers.export_to_file`), on its own read connection."""
        from .writers import export_to_file  # writers imports this module

        return export_to_file(self.path, dataset, fmt, target, **options)

    def iter_wallet(self, wallet: str, fmt: Any, **options: Any) -> Iterator[bytes]:
        from .writers import iter_wallet_export

        return iter_wallet_export(self.path, wallet, fmt, **options)
