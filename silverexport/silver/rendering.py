"""How Silver values become CSV fields and JSON values: every rendering decision lives here.

The rules (SPEC §3):
- CSV, RFC 4180 as PostgreSQL's `COPY ... CSV` writes it: a field is quoted when it holds a
  comma, a quote, CR or LF, or is the empty string (so null, an empty unquoted field, stays
  distinct from ""); quotes inside are doubled; booleans are `true`/`false`; `decoded_fields`
  is its compact JSON text.
- JSON: text escaped as `json.dumps(..., ensure_ascii=False)` escapes it; decimals and times
  are strings; `decoded_fields` is nested as stored, numbers as written.

SQLite carries the rules out: it builds each row's finished line from the SQL made here. Most
lines are one printf() call, chosen per row by the *escape mask*, a generated column that
SQLite computes itself on every INSERT and UPDATE, whoever writes the row, so it can never go
stale:
- bit i set: column i (text or JSON) must be quoted in CSV;
- JSON_PLAIN set: no text in the row needs a JSON escape, so JSONL prints it between quotes;
- -1 (every bit): rows whose lines SQL works out in full, field by field: those with a NUL in
  their text (printf() would cut the string there) or with `decoded_fields` that is not
  compact JSON text (written by another program with SQL).
A backend without SQLite's printf() renders by the same rules, from this module.
"""

from __future__ import annotations

import json

from ..model import ExportFormat
from .catalog import Column, ColumnKind, Dataset

CR, LF = "\r", "\n"
CSV_SPECIAL = (",", '"', CR, LF)  # a field holding one of these is quoted, and so is ""
# What json.dumps(ensure_ascii=False) escapes: the quote, the backslash, U+0000 to U+001F.
JSON_SPECIAL = ('"', "\\", *map(chr, range(0x20)))

ESCAPE_MASK = "_escape_mask"
JSON_PLAIN = 1 << 62  # above any column's bit, so `mask >= JSON_PLAIN` tests it and `>= 0`


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _char(ch: str) -> str:
    """One character as SQL: control characters as char(n), readable in the schema."""
    return f"char({ord(ch)})" if ch < " " else _lit(ch)


# -- the escape mask -------------------------------------------------------------------------


def escape_mask_sql(ds: Dataset) -> str:
    """The generated column's expression (see the module docstring).

    It runs on every write, so it makes few function calls: most text needs no JSON escape,
    which one json_quote() per column shows (json_quote escapes the quote, CR and LF too, so
    such text needs CSV quotes only for a comma or for being empty). Null-safe: a NULL value
    never sets a bit (`CASE WHEN NULL` takes the ELSE branch).
    """
    texts = [(i, quote_name(c.name)) for i, c in enumerate(ds.columns) if c.kind is ColumnKind.TEXT]
    jsons = [
        (i, quote_name(c.name))
        for i, c in enumerate(ds.columns)
        if c.kind is ColumnKind.JSON_OBJECT
    ]

    def bits(columns: list[tuple[int, str]], chars: tuple[str, ...], empty: bool) -> list[str]:
        out = []
        for i, x in columns:
            tests = [f"{x} = ''"] if empty else []
            tests += [f"instr({x}, {_char(ch)})" for ch in chars]
            out.append(f"(CASE WHEN {' OR '.join(tests)} THEN {1 << i} ELSE 0 END)")
        return out

    json_bits = bits(jsons, CSV_SPECIAL, empty=False)
    plain = " AND ".join(f"""ifnull(json_quote({x}) = '"' || {x} || '"', 1)""" for _, x in texts)
    when_plain = " | ".join([str(JSON_PLAIN), *bits(texts, (",",), True), *json_bits])
    otherwise = " | ".join(["0", *bits(texts, CSV_SPECIAL, True), *json_bits])
    nul = " OR ".join(f"instr({x}, char(0))" for _, x in texts)
    # json() minifies and keeps numbers as written: text that differs is not compact JSON.
    loose = " OR ".join(f"{x} <> json({x})" for _, x in jsons)
    return (
        "CASE "
        + (f"WHEN {loose} THEN -1 " if loose else "")
        + f"WHEN {plain or 1} THEN {when_plain} "
        + (f"WHEN {nul} THEN -1 " if nul else "")
        + f"ELSE {otherwise} END"
    )


# -- SQL that renders one line per row -------------------------------------------------------


def _quoted(x: str) -> str:
    return f"""'"' || replace({x}, '"', '""') || '"'"""


def _printf(template: str, args: list[str]) -> str:
    return f"printf({_lit(template)}, {', '.join(args)})"


def _int_spec(c: Column, null: str) -> tuple[str, str]:
    """%d for a NOT NULL integer: faster than %s, which first converts the value to text."""
    x = quote_name(c.name)
    return ("%s", f"ifnull({x}, {null})") if c.nullable else ("%d", x)


def _csv_fast(c: Column, position: int | None) -> tuple[str, str]:
    """A printf() spec and argument; with a `position`, the row's mask bit for it says whether
    to quote (rows whose mask has no CSV bit pass None)."""
    x = quote_name(c.name)
    if c.kind is ColumnKind.INTEGER:
        return _int_spec(c, "''")
    if c.kind.free_text and position is not None:
        return "%s", f"CASE WHEN {ESCAPE_MASK} & {1 << position} THEN {_quoted(x)} ELSE {x} END"
    if c.kind is ColumnKind.BOOLEAN:
        return "%s", f"CASE {x} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END"
    return "%s", x  # decimals, times, choices, unquoted text; printf renders NULL as ''


def _csv_slow(c: Column) -> str:
    """A NUL-safe field expression that decides quoting itself."""
    x = quote_name(c.name)
    if c.kind.free_text:
        if c.kind is ColumnKind.JSON_OBJECT:
            x = f"json({x})"
        # instr, not GLOB: GLOB stops at a NUL character and would miss a comma after it.
        needs = " OR ".join([f"{x} = ''", *(f"instr({x}, {_char(ch)})" for ch in CSV_SPECIAL)])
        expr = f"CASE WHEN {needs} THEN {_quoted(x)} ELSE {x} END"
    else:
        expr = _csv_fast(c, None)[1]
    return f"ifnull({expr}, '')" if c.nullable else expr


def _json_fast(c: Column) -> tuple[str, str]:
    """A printf() spec and argument for a row whose text needs no JSON escape (JSON_PLAIN)."""
    x = quote_name(c.name)
    if c.kind is ColumnKind.INTEGER:
        return _int_spec(c, "'null'")
    if c.kind is ColumnKind.BOOLEAN:
        return "%s", f"CASE {x} WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE 'null' END"
    if c.kind is ColumnKind.JSON_OBJECT:
        return "%s", f"ifnull({x}, 'null')" if c.nullable else x  # compact JSON (else mask -1)
    # Text of every other kind: validated decimals, times and choices never need escaping.
    return ("%s", f"""ifnull('"' || {x} || '"', 'null')""") if c.nullable else ('"%s"', x)


def _json_slow(c: Column) -> str:
    x = quote_name(c.name)
    if c.kind is ColumnKind.BOOLEAN:
        return f"json(CASE {x} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    if c.kind is ColumnKind.JSON_OBJECT:
        # json() minifies and keeps numbers and escapes as written; the byte-level property
        # test holds SQLite to that.
        return f"json({x})"
    return x  # json_object() escapes text exactly like json.dumps(ensure_ascii=False)


def line_sql(ds: Dataset, fmt: ExportFormat) -> str:
    """A SQL expression giving the finished, terminated line for one row of `ds`.

    Most lines are one printf() call guided by the row's escape mask: much faster than
    json_object() or a chain of || with instr() tests, which only rows with a NUL in their
    text (and, for JSONL, rows with text to escape) take.
    """
    if fmt is ExportFormat.CSV:
        specs, args = zip(*(_csv_fast(c, None) for c in ds.columns), strict=True)
        template = ",".join(specs) + CR + LF
        plain = _printf(template, list(args))
        quoting = _printf(template, [_csv_fast(c, i)[1] for i, c in enumerate(ds.columns)])
        slow = " || ',' || ".join(_csv_slow(c) for c in ds.columns) + f" || {_lit(CR + LF)}"
        return (
            f"CASE WHEN {ESCAPE_MASK} IN (0, {JSON_PLAIN}) THEN {plain} "  # no CSV bit set
            f"WHEN {ESCAPE_MASK} >= 0 THEN {quoting} ELSE {slow} END"
        )
    # The keys are constant text in the template (a literal % doubled for printf).
    key = {c.name: json.dumps(c.name, ensure_ascii=False).replace("%", "%%") for c in ds.columns}
    specs, args = zip(*(_json_fast(c) for c in ds.columns), strict=True)
    fields = (f"{key[c.name]}:{spec}" for c, spec in zip(ds.columns, specs, strict=True))
    template = "{" + ",".join(fields) + "}" + LF
    plain = _printf(template, list(args))
    pairs = ", ".join(f"{_lit(c.name)}, {_json_slow(c)}" for c in ds.columns)
    return (
        f"CASE WHEN {ESCAPE_MASK} >= {JSON_PLAIN} THEN {plain} "
        f"ELSE json_object({pairs}) || {_lit(LF)} END"
    )


def header(ds: Dataset, fmt: ExportFormat) -> bytes:
    return (",".join(ds.column_names) + CR + LF).encode() if fmt is ExportFormat.CSV else b""
