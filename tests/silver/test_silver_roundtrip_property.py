"""Hypothesis: any rows, ingested as JSON Lines or written with plain SQL, export to the bytes
that SPEC §3 prescribes (json.dumps for JSONL; csv.writer's quoting for CSV, with null as an
empty unquoted field and "" quoted), and read back equal."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silverexport.silver.catalog import DATASETS, Column, ColumnKind, Dataset
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import export_to_file
from silverexport.timeutil import format_time, normalize_time

# Any Unicode except lone surrogates (not encodable as UTF-8), biased towards the characters
# that CSV and JSON treat specially.
TRICKY = st.sampled_from([",", '"', "\r", "\n", "\r\n", "\x00", " ", "\u2028", "\ufeff", "é"])
TEXT = st.lists(
    st.one_of(TRICKY, st.text(st.characters(exclude_categories=("Cs",)), max_size=8)),
    max_size=5,
).map("".join)
DECIMAL = st.one_of(
    st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?", fullmatch=True),
    st.integers(min_value=-(10**40), max_value=10**40),  # JSON integers: exact too
)
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
OFFSET = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
TIME = st.one_of(
    st.integers(min_value=-(10**13), max_value=10**13),  # epoch milliseconds
    st.builds(
        lambda dt, tz: dt.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
        OFFSET,
    ),
)


KINDS = {
    ColumnKind.INTEGER: st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ColumnKind.DECIMAL: DECIMAL,
    ColumnKind.TIME: TIME,
    ColumnKind.BOOLEAN: st.booleans(),
    ColumnKind.JSON_OBJECT: st.dictionaries(TEXT, JSON_VALUE, max_size=4),
    ColumnKind.TEXT: TEXT,
}


def column_values(c: Column) -> st.SearchStrategy[Any]:
    base = st.sampled_from(c.choices) if c.kind is ColumnKind.CHOICE else KINDS[c.kind]
    if c.max_length is not None:
        base = base.filter(lambda text: 1 <= len(text) <= c.max_length)
    return st.none() | base if c.nullable else base


def rows_of(ds: Dataset) -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries({c.name: column_values(c) for c in ds.columns if c.name != "id"})
    return st.lists(row, min_size=1, max_size=12)


def expected(ds: Dataset, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the export must give them: ids by arrival, canonical times and decimals."""
    out = []
    for i, row in enumerate(rows, 1):
        value = {"id": i}
        for c in ds.columns[1:]:
            v = row.get(c.name)
            if v is not None and c.kind is ColumnKind.DECIMAL:
                v = str(v)
            elif v is not None and c.kind is ColumnKind.TIME:
                v = normalize_time(v)
            value[c.name] = v
        out.append(value)
    return sorted(out, key=lambda r: (r[ds.time_column], r["id"]))


def csv_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return "" if value is None else str(value)


def csv_field(value: Any) -> str:
    """csv.writer's minimal quoting, except (SPEC §3) null is an empty unquoted field and an
    empty string is quoted: csv.writer itself writes both as nothing."""
    if value is None:
        return ""
    if value == "":
        return '""'
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerow([csv_text(value)])  # CR, LF: quoted
    return buffer.getvalue().removesuffix("\r\n")


def stored(ds: Dataset, row: dict[str, Any]) -> list[Any]:
    """A row as another program would write it with SQL: the values SPEC §2 stores."""
    values = []
    for c in ds.columns:
        v = row[c.name]
        if v is not None and c.kind is ColumnKind.JSON_OBJECT:
            v = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
        values.append(int(v) if isinstance(v, bool) else v)
    return values


def write_with_sql(store: SilverStore, ds: Dataset, rows: list[dict[str, Any]], update: bool):
    """INSERT `rows` (or UPDATE the rows of the same ids to them) through a plain sqlite3
    connection, as a program that knows nothing of silverexport would."""
    names = ds.column_names
    if update:
        sets = ", ".join(f"{n} = ?" for n in names[1:])
        sql, order = f"UPDATE {ds.name} SET {sets} WHERE id = ?", [*names[1:], "id"]
    else:
        marks = ", ".join("?" * len(names))
        sql, order = f"INSERT INTO {ds.name} ({', '.join(names)}) VALUES ({marks})", names
    with sqlite3.connect(store.path) as conn:
        for row in rows:
            values = dict(zip(names, stored(ds, row), strict=True))
            conn.execute(sql, [values[n] for n in order])
    conn.close()


def exports(store: SilverStore, ds: Dataset) -> tuple[bytes, bytes]:
    out = store.path.parent
    for fmt in ("jsonl", "csv"):
        export_to_file(store.path, ds.name, fmt, out / fmt, limit=100, batch_size=5)
    return (out / "jsonl").read_bytes(), (out / "csv").read_bytes()


def run_round_trip(store: SilverStore, ds: Dataset, rows: list[dict[str, Any]]) -> None:
    """Replace the dataset's rows with `rows` (ids restart at 1), export both ways, compare."""
    want = expected(ds, rows)
    store.db.execute(f"DELETE FROM {ds.name}")
    store.ingest_jsonl(ds.name, [json.dumps(r).encode() + b"\n" for r in rows])
    check_bytes(ds, want, *exports(store, ds))


def run_sql_round_trip(store: SilverStore, ds: Dataset, rows: list[dict[str, Any]]) -> None:
    """The same rows written with plain SQL, by INSERT and by UPDATE of other rows, export
    to the same bytes as when ingested."""
    want = expected(ds, rows)
    store.db.execute(f"DELETE FROM {ds.name}")
    store.ingest_jsonl(ds.name, [json.dumps(r).encode() + b"\n" for r in rows])
    ingested = exports(store, ds)

    store.db.execute(f"DELETE FROM {ds.name}")
    write_with_sql(store, ds, want, update=False)
    assert exports(store, ds) == ingested

    # Other rows first (the same ones, reversed, so that each id holds other values),
    # ingested; then every row UPDATEd with SQL to the wanted values.
    store.db.execute(f"DELETE FROM {ds.name}")
    store.ingest_jsonl(ds.name, [json.dumps(r).encode() + b"\n" for r in reversed(rows)])
    write_with_sql(store, ds, want, update=True)
    assert exports(store, ds) == ingested


def check_bytes(ds: Dataset, want: list[dict[str, Any]], jsonl_bytes: bytes, csv_bytes: bytes):
    # JSONL: the stdlib writes the same bytes, and reads back the same values.
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    assert jsonl_bytes == "".join(json.dumps(r, **compact) + "\n" for r in want).encode()
    assert [json.loads(line) for line in jsonl_bytes.decode().split("\n")[:-1]] == want

    # CSV: minimal quoting, CRLF, null unquoted and "" quoted; csv.DictReader gets every
    # value back (null and "" both as "": the bytes above are what tell them apart).
    lines = [",".join(ds.column_names)]
    lines += [",".join(csv_field(r[name]) for name in ds.column_names) for r in want]
    assert csv_bytes == "".join(line + "\r\n" for line in lines).encode()
    back = list(csv.DictReader(io.StringIO(csv_bytes.decode(), newline="")))
    assert back == [{k: csv_text(v) for k, v in r.items()} for r in want]


def property_check(name: str, run: Any, examples: int) -> None:
    """Run `run(store, ds, rows)` on generated rows, in one store per dataset (creating one
    costs more than an example)."""
    ds = DATASETS[name]
    with tempfile.TemporaryDirectory() as tmp, SilverStore(Path(tmp) / "silver.db") as store:

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(rows_of(ds))
        def check(rows: list[dict[str, Any]]) -> None:
            run(store, ds, rows)

        check()


@pytest.mark.parametrize("name", list(DATASETS))
def test_any_rows_round_trip_byte_exact(name: str):
    examples = 60 if name in ("token_transfers", "decoded_events", "hl_fills") else 25
    property_check(name, run_round_trip, examples)


@pytest.mark.parametrize("name", list(DATASETS))
def test_rows_written_with_sql_export_as_if_ingested(name: str):
    property_check(name, run_sql_round_trip, 20)


def test_the_nul_and_plain_paths_agree(sqlite_store: SilverStore):
    """A row with a NUL takes the SQL-side quoting path; both paths must match csv.writer."""
    base = {
        "target_id": "t,1",
        "network": 'say "hi"',
        "block_number": 1,
        "block_time": format_time(datetime(2024, 1, 1, tzinfo=UTC)),
        "tx_hash": "a\r\nb",
        "log_index": 0,
        "token_address": "",
        "from_address": " lead",
        "to_address": "x",
        "amount": "0.1",
    }
    rows = [base, {**base, "to_address": "x\x00,y"}, {**base, "tx_hash": "\x00"}]
    run_round_trip(sqlite_store, DATASETS["token_transfers"], rows)
