"""POST /v1/export/dataset: strict bodies, every refusal named, and Idempotency-Key."""

from __future__ import annotations

import pytest

from .conftest import ALICE, BOB, error_of

CSV = {"dataset": "token_transfers", "format": "csv"}
URL = "/v1/export/dataset"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CSV, "colour": "red"}, "colour"),
        ({"format": "csv"}, "dataset"),
        ({"dataset": "token_transfers"}, "format"),
        ({**CSV, "dataset": "nope"}, "dataset"),
        ({**CSV, "dataset": 7}, "dataset"),
        ({**CSV, "format": "xml"}, "format"),
        ({**CSV, "format": ["csv"]}, "format"),
        ({**CSV, "limit": True}, "limit"),
        ({**CSV, "limit": "5"}, "limit"),
        ({**CSV, "limit": 1.5}, "limit"),
        ({**CSV, "limit": 0}, "limit"),
        ({**CSV, "limit": 100_001}, "limit"),
        ({**CSV, "target_id": 5}, "target_id"),
        ({**CSV, "target_id": ""}, "target_id"),
        ({**CSV, "network": {"a": 1}}, "network"),
        ({**CSV, "from": "yesterday"}, "from"),
        ({**CSV, "to": 1700000000000}, "to"),
        ({**CSV, "from": "2024-02-30T00:00:00Z"}, "from"),
        ({**CSV, "from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "from"),
        ({**CSV, "from": "2024-01-01T00:00:00Z", "to": "2024-01-01T01:00:00+01:00"}, "from"),
        ({**CSV, "compression": "zip"}, "compression"),
        ([CSV], "body"),
        ("csv", "body"),
        (7, "body"),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(client, body, field):
    resp = await client.post(URL, json=body, headers=ALICE)
    error = await error_of(resp, 400)
    assert field in error["message"], error


async def test_an_unknown_dataset_lists_the_valid_ones(client):
    resp = await client.post(URL, json={**CSV, "dataset": "nope"}, headers=ALICE)
    message = (await error_of(resp, 400))["message"]
    for name in ("token_transfers", "hl_fills", "positions", "decoded_events"):
        assert name in message


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"dataset": NaN}', b"\xff\xfe{}", b'{"dataset": "\xc3"}', b"null", b"[1,]"],
)
async def test_malformed_json_is_400(client, raw):
    resp = await client.post(URL, data=raw, headers={**ALICE, "Content-Type": "application/json"})
    await error_of(resp, 400)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_the_body_is_read_as_json_whatever_its_content_type(client, content_type):
    body = b'{"dataset": "token_transfers", "format": "csv"}'
    resp = await client.post(URL, data=body, headers={**ALICE, "Content-Type": content_type})
    assert resp.status == 202
    resp = await client.post(URL, data=b"a=1", headers={**ALICE, "Content-Type": content_type})
    error = await error_of(resp, 400)
    assert content_type in error["message"]


async def test_a_charset_parameter_on_json_is_fine(client):
    resp = await client.post(
        URL,
        data=b'{"dataset": "token_transfers", "format": "csv"}',
        headers={**ALICE, "Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status == 202


async def test_oversize_bodies_are_413_with_or_without_a_length(client, system):
    limit = system.settings.max_body_bytes
    big = b'{"dataset": "' + b"x" * limit + b'"}'
    headers = {**ALICE, "Content-Type": "application/json"}
    resp = await client.post(URL, data=big, headers=headers)
    assert str(limit) in (await error_of(resp, 413))["message"]

    async def chunks():
        for _ in range(4):
            yield b" " * limit  # chunked: no Content-Length to refuse up front

    resp = await client.post(URL, data=chunks(), headers=headers)
    await error_of(resp, 413)


async def test_idempotency_same_body_returns_the_first_job_with_200(client):
    headers = {**ALICE, "Idempotency-Key": "order-42"}
    first = await client.post(URL, json={**CSV, "target_id": "t1"}, headers=headers)
    assert first.status == 202
    # Equal as JSON: other key order, other spacing.
    again = await client.post(
        URL,
        data=b'{ "target_id" : "t1", "format":"csv",  "dataset":"token_transfers"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert again.status == 200
    assert (await again.json())["job_id"] == (await first.json())["job_id"]


async def test_idempotency_different_body_is_409(client):
    headers = {**ALICE, "Idempotency-Key": "order-43"}
    assert (await client.post(URL, json=CSV, headers=headers)).status == 202
    resp = await client.post(URL, json={**CSV, "limit": 3}, headers=headers)
    assert (await error_of(resp, 409))["code"] == "conflict"


async def test_idempotency_keys_are_per_tenant(client):
    alice = await client.post(URL, json=CSV, headers={**ALICE, "Idempotency-Key": "same"})
    bob = await client.post(URL, json=CSV, headers={**BOB, "Idempotency-Key": "same"})
    assert alice.status == bob.status == 202
    assert (await alice.json())["job_id"] != (await bob.json())["job_id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "a\tb"])
async def test_bad_idempotency_keys_are_400(client, key):
    headers = {**ALICE, "Idempotency-Key": key.encode().decode("latin-1")}
    resp = await client.post(URL, json=CSV, headers=headers)
    assert "Idempotency-Key" in (await error_of(resp, 400))["message"]


async def test_a_255_character_key_is_accepted(client):
    resp = await client.post(URL, json=CSV, headers={**ALICE, "Idempotency-Key": "k" * 255})
    assert resp.status == 202
