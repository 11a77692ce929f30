"""Hypothesis: any valid rows, ingested and exported to Parquet, read back in pyarrow, DuckDB
and Polars as numerically equal decimals, identical text and the types of SPEC §3."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silverexport.silver.catalog import DATASETS, Column, ColumnKind, Dataset
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import export_to_file

from .readback import assert_reads_back

TEXT = st.lists(
    st.one_of(
        st.sampled_from([",", '"', "\r\n", "\x00", "\u2028", "\ufeff", "é", "😀", "\\"]),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
    ),
    max_size=5,
).map("".join)
FILTER_TEXT = TEXT.filter(lambda t: 1 <= len(t) <= 1024)  # target_id, network
# The boundaries SPEC §3 names, beside any decimal text of up to 40 + 40 digits.
BOUNDARY = st.sampled_from(
    [
        "1" * 38,
        "-" + "9" * 38,
        "1" * 39,
        "0." + "0" * 37 + "1",
        "-0." + "0" * 38 + "1",
        "-0",
        "0",
        "0.0",
        "7",
        "-12345678901234567890.123456789012345678",
    ]
)
DECIMAL = st.one_of(
    BOUNDARY,
    st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?", fullmatch=True),
    st.integers(min_value=-(10**40), max_value=10**40),  # JSON integers keep their text
)
OFFSET = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
TIME = st.one_of(
    st.integers(min_value=-(10**13), max_value=10**13),
    st.builds(
        lambda dt, tz: dt.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
        OFFSET,
    ),
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
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
    if c.choices:
        base = st.sampled_from(c.choices)
    elif c.name in ("target_id", "network"):
        base = FILTER_TEXT
    else:
        base = KINDS[c.kind]
    return st.none() | base if c.nullable else base


def rows_of(ds: Dataset) -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries({c.name: column_values(c) for c in ds.columns if c.name != "id"})
    return st.lists(row, min_size=1, max_size=10)


@pytest.mark.parametrize("name", list(DATASETS))
def test_any_rows_read_back_exactly(name: str):
    ds = DATASETS[name]
    with tempfile.TemporaryDirectory() as tmp, SilverStore(Path(tmp) / "silver.db") as store:
        out = Path(tmp) / "out.parquet"

        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(rows_of(ds), st.sampled_from([1, 4, 5000]))
        def check(rows: list[dict[str, Any]], batch_size: int) -> None:
            store.db.execute(f"DELETE FROM {ds.name}")
            store.ingest_jsonl(ds.name, [json.dumps(r).encode() for r in rows])
            result = export_to_file(
                store.path, ds.name, "parquet", out, limit=100, batch_size=batch_size
            )
            assert result.rows == len(rows)
            stored = assert_reads_back(out, store.path, ds)
            # The store kept every decimal's text, so equal-to-stored is equal-to-input.
            for c in ds.columns:
                if c.kind is ColumnKind.DECIMAL:
                    sent = sorted(str(r[c.name]) for r in rows if r[c.name] is not None)
                    assert sorted(r[c.name] for r in stored if r[c.name] is not None) == sent

        check()
