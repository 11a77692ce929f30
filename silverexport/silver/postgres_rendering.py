"""The rules of rendering.py carried out in PostgreSQL's SQL: each row's finished line.

PostgreSQL builds the lines, as SQLite does, so Python only moves bytes. The rules are the
same (rendering.py's docstring); the bytes are the same, which the cross-backend tests check
format by format. Here:
- CSV quoting is decided when a row is written, by the generated `_escape_mask`: bit i set
  means column i (text or JSON) needs quotes; 0 means no field does, so the line is one plain
  concatenation. -1 marks a row whose `decoded_fields` is not compact JSON text (another
  program wrote it with SQL): its line is worked out in full at export, field by field.
- JSON text is escaped by `to_json(text)`, which escapes exactly what
  `json.dumps(ensure_ascii=False)` escapes (the quote, the backslash, U+0000 to U+001F, with
  the short forms \\b \\f \\n \\r \\t and lowercase \\u00xx otherwise). Bit
  JSON_BIT + i of the mask says text column i may need an escape; most text needs none, and
  is written between quotes as it is, which is much cheaper than to_json().
- Compact JSON is made by removing whitespace outside strings (MINIFY), which keeps numbers,
  escapes and key order as written: what SQLite's json() gives for the same text.
PostgreSQL text cannot hold U+0000, so no line here has to survive one (ingest refuses it).
"""

from __future__ import annotations

import json

from ..model import ExportFormat
from .catalog import Column, ColumnKind, Dataset
from .rendering import CR, CSV_SPECIAL, ESCAPE_MASK, LF, quote_name

JSON_BIT = 24  # bit JSON_BIT + i: column i may need a JSON escape (CSV bits are 0 to 23)
# A JSON string (kept, as group 1) or a run of whitespace outside strings (dropped).
MINIFY = r'("(?:[^"\\]|\\.)*")|[ \t\n\r]+'


def lit(text: str) -> str:
    """A SQL string literal; E'' with escapes for control characters, so DDL stays readable."""
    if any(ch < " " or ch == "\\" for ch in text):
        body = "".join(
            {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\", "'": "''"}.get(ch, ch)
            for ch in text
        )
        return f"E'{body}'"
    return "'" + text.replace("'", "''") + "'"


def minified(x: str) -> str:
    return f"regexp_replace({x}, {lit(MINIFY)}, '\\1', 'g')"


def _needs_quotes(x: str, empty: bool = True) -> str:
    tests = [f"{x} = ''"] if empty else []
    tests += [f"strpos({x}, {lit(ch)}) > 0" for ch in CSV_SPECIAL]
    return " OR ".join(tests)


def escape_mask_sql(ds: Dataset) -> str:
    """The generated column's expression (immutable functions only, as PostgreSQL requires)."""
    bits = [
        f"(CASE WHEN {_needs_quotes(quote_name(c.name))} THEN {1 << i} ELSE 0 END)"
        for i, c in enumerate(ds.columns)
        if c.kind.free_text
    ]
    # [[:cntrl:]] also takes DEL, which needs no escape: such text only takes to_json().
    bits += [
        f"(CASE WHEN strpos({x}, '\"') > 0 OR strpos({x}, '\\') > 0 OR {x} ~ '[[:cntrl:]]' "
        f"THEN {1 << (JSON_BIT + i)} ELSE 0 END)"
        for i, c in enumerate(ds.columns)
        if c.kind is ColumnKind.TEXT
        for x in [quote_name(c.name)]
    ]
    loose = [
        f"{quote_name(c.name)} <> {minified(quote_name(c.name))}"
        for c in ds.columns
        if c.kind is ColumnKind.JSON_OBJECT
    ]
    value = " | ".join(["0", *bits])
    if not loose:
        return value
    return f"CASE WHEN {' OR '.join(loose)} THEN -1 ELSE {value} END"


# -- one line per row ------------------------------------------------------------------------


def _quoted(x: str) -> str:
    return f"""'"' || replace({x}, '"', '""') || '"'"""


def _bool(x: str, null: str) -> str:
    return f"CASE WHEN {x} THEN 'true' WHEN NOT {x} THEN 'false' ELSE {null} END"


def _csv_field(c: Column, position: int, mode: str) -> str:
    """`mode`: "plain" (no field needs quotes), "mask" (the row's bits say), "full" (decide
    here, from the compact JSON)."""
    x = quote_name(c.name)
    kind = c.kind
    if kind is ColumnKind.INTEGER:
        expr = f"{x}::text"
    elif kind is ColumnKind.BOOLEAN:
        return _bool(x, "''")
    elif kind.free_text and mode == "mask":
        expr = f"CASE WHEN {ESCAPE_MASK} & {1 << position} <> 0 THEN {_quoted(x)} ELSE {x} END"
    elif kind.free_text and mode == "full":
        if kind is ColumnKind.JSON_OBJECT:
            x = minified(x)
        expr = f"CASE WHEN {_needs_quotes(x)} THEN {_quoted(x)} ELSE {x} END"
    else:
        expr = x  # decimals, times and choices never need quotes; plain text here neither
    return f"coalesce({expr}, '')" if c.nullable else expr


def _json_value(c: Column, position: int) -> str:
    x = quote_name(c.name)
    kind = c.kind
    if kind is ColumnKind.INTEGER:
        expr = f"{x}::text"
    elif kind is ColumnKind.BOOLEAN:
        return _bool(x, "'null'")
    elif kind is ColumnKind.JSON_OBJECT:
        expr = f"CASE WHEN {ESCAPE_MASK} = -1 THEN {minified(x)} ELSE {x} END"
    elif kind is ColumnKind.TEXT:
        escape = f"{ESCAPE_MASK} & {1 << (JSON_BIT + position)} <> 0"
        expr = f"""CASE WHEN {escape} THEN to_json({x})::text ELSE '"' || {x} || '"' END"""
    else:
        expr = f"""'"' || {x} || '"'"""  # validated decimals, times, choices: no escapes
    return f"coalesce({expr}, 'null')" if c.nullable else expr


def _concat(parts: list[str]) -> str:
    return " || ".join(parts)


def line_sql(ds: Dataset, fmt: ExportFormat) -> str:
    """A SQL expression giving the finished, terminated line (text) for one row of `ds`."""
    if fmt is ExportFormat.CSV:

        def csv(mode: str) -> str:
            fields = [_csv_field(c, i, mode) for i, c in enumerate(ds.columns)]
            return _concat([*_between(fields, "','"), lit(CR + LF)])

        csv_bits = (1 << JSON_BIT) - 1
        return (
            f"CASE WHEN {ESCAPE_MASK} & {csv_bits} = 0 THEN {csv('plain')} "
            f"WHEN {ESCAPE_MASK} > 0 THEN {csv('mask')} ELSE {csv('full')} END"
        )
    parts = []
    for i, c in enumerate(ds.columns):
        key = json.dumps(c.name, ensure_ascii=False)
        parts.append(lit(("{" if i == 0 else ",") + key + ":"))
        parts.append(_json_value(c, i))
    parts.append(lit("}" + LF))
    return _concat(parts)


def _between(fields: list[str], sep: str) -> list[str]:
    out: list[str] = []
    for i, f in enumerate(fields):
        if i:
            out.append(sep)
        out.append(f"({f})")
    return out
