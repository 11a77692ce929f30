"""Validated, all-or-nothing ingest: every rejection names line and column and writes nothing."""

from __future__ import annotations

import csv
import io
import json

import pytest

from silverexport.errors import ValidationError
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import export_to_file
from tests.silver.conftest import sql

GOOD = {"amount": "2"}


def lines(*rows: object) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" if not isinstance(r, bytes) else r for r in rows]


def rejected(store: SilverStore, dataset: str, data: list[bytes]) -> str:
    """Ingest `data` after one stored row; assert it failed and wrote nothing."""
    before = store.count(dataset)
    with pytest.raises(ValidationError) as e:
        store.ingest_jsonl(dataset, data)
    assert store.count(dataset) == before
    return str(e.value)


@pytest.fixture
def seeded(store, transfer, fill, event):
    store.ingest("token_transfers", [transfer(id=1)])
    store.ingest("hl_fills", [fill()])
    store.ingest("decoded_events", [event()])
    return store


@pytest.mark.parametrize(
    ("change", "column", "why"),
    [
        ({"amount": 1.5}, "amount", "JSON float, which has already lost exactness"),
        ({"amount": "1e5"}, "amount", '"1e5" is not a decimal string'),
        ({"amount": "+1"}, "amount", "is not a decimal string"),
        ({"amount": ".5"}, "amount", "is not a decimal string"),
        ({"amount": "01"}, "amount", "is not a decimal string"),
        ({"amount": "1."}, "amount", "is not a decimal string"),
        ({"amount": "1\n"}, "amount", "is not a decimal string"),
        ({"amount": "\u0661"}, "amount", "is not a decimal string"),  # an Arabic-Indic 1
        ({"amount": True}, "amount", "boolean"),
        ({"amount": None}, "amount", "must not be null"),
        ({"block_time": "2024-13-01T00:00:00Z"}, "block_time", "not a real date"),
        ({"block_time": "2024-01-01 00:00"}, "block_time", "RFC 3339"),
        ({"block_time": "2024-01-01T00:00:00"}, "block_time", "RFC 3339"),
        ({"block_time": 1.5e12}, "block_time", "float"),
        ({"block_time": 10**20}, "block_time", "out of range"),
        ({"block_number": "5"}, "block_number", "expected a JSON integer, got a string"),
        ({"block_number": 5.0}, "block_number", "got a float"),
        ({"block_number": True}, "block_number", "got a boolean"),
        ({"block_number": 2**63}, "block_number", "64-bit"),
        ({"tx_hash": 5}, "tx_hash", "expected a string, got an integer"),
        ({"tx_hash": "\ud800"}, "tx_hash", "lone surrogate"),
        ({"direction": "sideways"}, "direction", 'expected "in" or "out"'),
        ({"direction": 1}, "direction", 'expected "in" or "out"'),
        ({"colour": "red"}, "colour", "unknown column"),
        ({"id": "7"}, "id", "expected a JSON integer"),
    ],
)
def test_bad_transfer_rows_are_rejected(seeded, transfer, change, column, why):
    message = rejected(seeded, "token_transfers", lines(transfer(), transfer(**change)))
    assert message.startswith(f'line 2, column "{column}": ')
    assert why in message


def test_missing_required_column(seeded, transfer):
    row = transfer()
    del row["amount"]
    message = rejected(seeded, "token_transfers", lines(transfer(), row))
    assert message == 'line 2, column "amount": is missing (it is required)'


@pytest.mark.parametrize(
    ("change", "column", "why"),
    [
        ({"side": "b"}, "side", 'expected "B" or "A"'),
        ({"crossed": 1}, "crossed", "expected true or false"),
        ({"crossed": "true"}, "crossed", "expected true or false"),
        ({"oid": 1.0}, "oid", "float"),
    ],
)
def test_bad_fill_rows_are_rejected(seeded, fill, change, column, why):
    message = rejected(seeded, "hl_fills", lines(fill(**change)))
    assert message.startswith(f'line 1, column "{column}": ') and why in message


@pytest.mark.parametrize(
    ("fields", "why"),
    [([1], "expected a JSON object, got an array"), ("{}", "got a string"), (None, "null")],
)
def test_decoded_fields_must_be_an_object(seeded, event, fields, why):
    message = rejected(seeded, "decoded_events", lines(event(decoded_fields=fields)))
    assert message.startswith('line 1, column "decoded_fields": ') and why in message


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": "\\udc00"}', "lone surrogate"),
    ],
)
def test_decoded_fields_must_be_exact_json(seeded, event, raw, why):
    line = json.dumps(event(decoded_fields={})).replace('"decoded_fields": {}', "").rstrip("}")
    line = line.rstrip(", ") + ', "decoded_fields": ' + raw.decode() + "}"
    message = rejected(seeded, "decoded_events", [line.encode()])
    assert "line 1" in message and why in message


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"[1, 2]", "line 2: expected a JSON object, got an array"),
        (b'"text"', "line 2: expected a JSON object, got a string"),
        (b"{not json", "line 2: not valid JSON"),
        (b'{"amount": "1"', "line 2: not valid JSON"),
        (b"\xff\xfe", "line 2: not UTF-8"),
    ],
)
def test_lines_that_are_not_objects(seeded, transfer, raw, why):
    message = rejected(seeded, "token_transfers", [*lines(transfer()), raw])
    assert message.startswith(why)


def test_a_late_error_undoes_a_large_batch(seeded, transfer):
    data = lines(*[transfer(block_number=i) for i in range(3000)], transfer(amount="x"))
    assert "line 3001" in rejected(seeded, "token_transfers", data)


def test_blank_lines_are_skipped_but_counted(store, transfer):
    data = [b"\n", *lines(transfer()), b"   \n", *lines(transfer(amount=1.0))]
    message = rejected(store, "token_transfers", data)
    assert message.startswith('line 4, column "amount"')
    assert store.ingest_jsonl("token_transfers", [b"\n", *lines(transfer()), b"\r\n"]) == 1


def test_ingest_names_rows_from_first_line(store, transfer):
    with pytest.raises(ValidationError, match=r'^line 11, column "amount"'):
        store.ingest("token_transfers", [transfer(), transfer(amount="bad")], first_line=10)
    assert store.count("token_transfers") == 0


def test_unknown_dataset(store):
    with pytest.raises(ValidationError, match="valid datasets"):
        store.ingest_jsonl("nope", [b"{}"])


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T01:30:00+01:30", "2024-01-01T00:00:00.000Z"),
        ("2023-12-31T19:00:00.5-05:00", "2024-01-01T00:00:00.500Z"),
        ("2024-01-01T00:00:00.123999999Z", "2024-01-01T00:00:00.123Z"),
        ("2024-01-01t00:00:00.1234z", "2024-01-01T00:00:00.123Z"),
        (1704067200123, "2024-01-01T00:00:00.123Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        ("0999-06-01T00:00:00Z", "0999-06-01T00:00:00.000Z"),
    ],
)
def test_times_are_stored_canonical_utc(store, transfer, given, stored):
    store.ingest("token_transfers", [transfer(block_time=given)])
    assert sql(store, "SELECT block_time FROM token_transfers")[0][0] == stored


def test_decimals_are_stored_as_exact_text(store, transfer):
    values = ["-0.000000000000000001", "123456789012345678901234567890.5", "0", "-7"]
    store.ingest("token_transfers", [transfer(amount=v) for v in values])
    store.ingest_jsonl(
        "token_transfers",
        [
            b'{"amount": 123456789012345678901234567890, '
            + (json.dumps(transfer()).split("{", 1)[1].replace('"amount": "1.5", ', "").encode())
        ],
    )
    stored = [r[0] for r in sql(store, "SELECT amount FROM token_transfers ORDER BY id")]
    assert stored == [*values, "123456789012345678901234567890"]


def test_ids_are_assigned_in_arrival_order_after_the_max(store, transfer):
    store.ingest("token_transfers", [transfer(id=10), transfer(), transfer()])
    store.ingest("token_transfers", [transfer(), transfer(id=3)])
    ids = [r[0] for r in sql(store, "SELECT id FROM token_transfers ORDER BY id")]
    assert ids == [3, 10, 11, 12, 13]


def test_given_ids_must_be_unique_including_stored_rows(store, transfer):
    store.ingest("token_transfers", [transfer(id=5)])
    with pytest.raises(ValidationError, match=r'^line 2, column "id": id 5 is already used'):
        store.ingest("token_transfers", [transfer(id=6), transfer(id=5)])
    with pytest.raises(ValidationError, match=r'^line 3, column "id": id 7 is already used'):
        store.ingest("token_transfers", [transfer(id=7), transfer(), transfer(id=7)])
    assert store.count("token_transfers") == 1


def test_nullable_columns_may_be_left_out_or_null(store, transfer):
    row = transfer(direction=None)
    del row["token_symbol"]
    assert store.ingest("token_transfers", [row]) == 1
    stored = sql(store, "SELECT token_symbol, direction FROM token_transfers")[0]
    assert stored == (None, None)


def test_decoded_fields_are_stored_as_compact_json(store, event):
    store.ingest("decoded_events", [event(decoded_fields={"b": [1, 2.5], "a": "é"})])
    stored = sql(store, "SELECT decoded_fields FROM decoded_events")[0][0]
    assert stored == '{"b":[1,2.5],"a":"é"}'


def ingest_raw(store: SilverStore, dataset: str, row: dict, **raw_json: str) -> None:
    """Ingest one JSON line: `row`, with the keys of `raw_json` holding raw JSON text."""
    line = json.dumps({k: v for k, v in row.items() if k not in raw_json})[:-1]
    line += "".join(f", {json.dumps(k)}: {v}" for k, v in raw_json.items()) + "}"
    store.ingest_jsonl(dataset, [line.encode()])


EXACT_NUMBERS = [
    "0.1",
    "1E+2",
    "123456789012345678901234567890.123456789",
    "1e-400",
    "1e400",
    "-0",
    "-0.0",
    "1.50",
    "2.5e-3",
    "123456789012345678901234567890",
]


def test_numbers_in_decoded_fields_are_kept_as_written(store, event, tmp_path):
    fields = "{" + ", ".join(f'"n{i}": {n}' for i, n in enumerate(EXACT_NUMBERS))
    fields += ', "list": [' + ", ".join(EXACT_NUMBERS) + '], "deep": {"x": [{"y": 1E+2}]}}'
    ingest_raw(store, "decoded_events", event(), decoded_fields=fields)
    compact = "{" + ",".join(f'"n{i}":{n}' for i, n in enumerate(EXACT_NUMBERS))
    compact += ',"list":[' + ",".join(EXACT_NUMBERS) + '],"deep":{"x":[{"y":1E+2}]}}'
    stored = sql(store, "SELECT decoded_fields FROM decoded_events")[0][0]
    assert stored == compact

    for fmt in ("jsonl", "csv"):
        export_to_file(store, "decoded_events", fmt, tmp_path / fmt, limit=10)
    line = (tmp_path / "jsonl").read_text("utf-8")
    assert line.endswith(',"decoded_fields":' + compact + "}\n")
    assert json.loads(line)["decoded_fields"]["n0"] == 0.1  # valid JSON, whatever the reader
    back = list(csv.DictReader(io.StringIO((tmp_path / "csv").read_text("utf-8"), newline="")))
    assert back[0]["decoded_fields"] == compact


@pytest.mark.parametrize("given", ["-0", "0", "-7", "123456789012345678901234567890123"])
def test_a_json_integer_decimal_keeps_its_text(store, transfer, tmp_path, given):
    ingest_raw(store, "token_transfers", transfer(), amount=given)
    assert sql(store, "SELECT amount FROM token_transfers")[0][0] == given
    export_to_file(store, "token_transfers", "jsonl", tmp_path / "o", limit=10)
    assert json.loads((tmp_path / "o").read_text("utf-8"))["amount"] == given


def test_negative_zero_is_still_zero_elsewhere(store, transfer):
    ingest_raw(store, "token_transfers", transfer(), block_number="-0", block_time="-0")
    stored = sql(store, "SELECT block_number, block_time FROM token_transfers")[0]
    assert stored == (0, "1970-01-01T00:00:00.000Z")
    line = json.dumps(transfer()).replace('"1.5"', "-0.0").encode()
    message = rejected(store, "token_transfers", [line])
    assert message.startswith('line 1, column "amount": -0.0 is a JSON float')


@pytest.mark.parametrize("column", ["target_id", "network"])
@pytest.mark.parametrize(
    ("value", "why"),
    [("", "must be 1 to 1024 characters long, not 0"), ("x" * 1025, "not 1025")],
)
def test_keys_a_filter_cannot_select_are_refused(seeded, transfer, column, value, why):
    message = rejected(seeded, "token_transfers", lines(transfer(), transfer(**{column: value})))
    assert message.startswith(f'line 2, column "{column}": ') and why in message


@pytest.mark.parametrize("column", ["target_id", "network"])
def test_keys_of_1_to_1024_characters_are_accepted(store, transfer, column):
    values = ["x", "x" * 1024, "\U0001f600" * 1024]  # characters, not bytes
    assert store.ingest("token_transfers", [transfer(**{column: v}) for v in values]) == 3
    stored = [r[0] for r in sql(store, f"SELECT {column} FROM token_transfers")]
    assert stored == values


def test_progress_reports_bytes_read(store, transfer):
    seen: list[int] = []
    data = lines(*[transfer() for _ in range(25_000)])
    store.ingest_jsonl("token_transfers", data, progress=seen.append)
    assert seen[-1] == sum(map(len, data)) and seen == sorted(seen) and len(seen) == 3


def test_each_adapter_is_the_port(store):
    from silverexport.silver.port import SilverBackend

    assert isinstance(store, SilverBackend)
    assert store.counts() == dict.fromkeys(store.counts(), 0) and len(store.counts()) == 6
