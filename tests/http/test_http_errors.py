"""The error middleware: our errors by type, aiohttp's in the same shape, bugs as a bare 500."""

from __future__ import annotations

import logging

import aiohttp
import pykka
import pytest

from silverexport.errors import StorageError
from silverexport.http import wallet

from .conftest import ALICE, WALLET, error_of


async def test_an_unexpected_error_is_logged_and_answered_with_a_generic_500(
    client, system, monkeypatch, caplog
):
    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(system, "list", broken)
    with caplog.at_level(logging.ERROR, logger="silverexport.http.errors"):
        resp = await client.get("/v1/export/jobs", headers=ALICE)
    error = await error_of(resp, 500)
    assert error["code"] == "internal_error" and "secret" not in error["message"]
    assert "secret internals" in caplog.text and "Traceback" in caplog.text


async def test_storage_trouble_is_503_and_a_dead_actor_system_too(client, system, monkeypatch):
    def full(**kwargs):
        raise StorageError("disk full")

    monkeypatch.setattr(system, "list", full)
    assert (await error_of(await client.get("/v1/export/jobs", headers=ALICE), 503))["code"]

    def dead(*args, **kwargs):
        raise pykka.ActorDeadError("gone")

    monkeypatch.setattr(system, "cancel", dead)
    resp = await client.delete("/v1/export/jobs/" + "0" * 32, headers=ALICE)
    assert (await error_of(resp, 503))["code"] == "unavailable"
    assert resp.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("path", "field"), [("/v1/export/jobs?colour=red", "colour"), (f"/v1/export/{WALLET}?x=1", "x")]
)
async def test_unknown_query_parameters_are_400(client, path, field):
    resp = await client.get(path, headers=ALICE)
    assert field in (await error_of(resp, 400))["message"]


async def test_a_wallet_export_failing_before_its_first_chunk_is_a_json_error(client, monkeypatch):
    def failing(*args, **kwargs):
        raise StorageError("could not read the Silver store")
        yield b""

    monkeypatch.setattr(wallet, "iter_wallet_export", failing)
    resp = await client.get(f"/v1/export/{WALLET}", headers=ALICE)
    assert "Silver store" in (await error_of(resp, 503))["message"]


async def test_a_wallet_export_failing_mid_stream_breaks_the_response(client, monkeypatch):
    """Once 200 is on the wire the only honest signal left is an unfinished chunked body."""

    def failing(*args, **kwargs):
        yield b'{"id": 1}\n'
        raise StorageError("the disk went away")

    monkeypatch.setattr(wallet, "iter_wallet_export", failing)
    resp = await client.get(f"/v1/export/{WALLET}", headers=ALICE)
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientError):  # payload or connection error, by timing
        await resp.read()
    assert (await client.get("/healthz")).status == 200
