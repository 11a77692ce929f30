"""Requests aiohttp's parser refuses (too long, too many headers, not HTTP) get the JSON error
shape and echo none of their bytes: raw sockets against the app served by our runner, and
against `silverexport serve` itself."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from aiohttp import web

from silverexport.http import make_app
from silverexport.http.server import HEADER_FIELD_BYTES, MAX_HEADERS, REQUEST_LINE_BYTES, AppRunner
from tests.reliability.serve_process import DEADLINE, ServeProcess, child_env

AUTH = b"Authorization: Bearer k1\r\n"
# A filler no message of ours contains, so that finding it in a response means it was echoed.
FILL = "Q7"


def long(n: int) -> str:
    return (FILL * n)[:n]


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def assert_json_refusal(raw: bytes, status: int, code: str | None = None) -> dict:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"].startswith("application/json"), headers
    assert FILL * 8 not in raw.decode("latin-1"), "the oversized text was echoed"
    document = json.loads(body)
    assert set(document) == {"error"} and set(document["error"]) == {"code", "message"}
    if code is not None:
        assert document["error"]["code"] == code, document
    return document["error"]


@pytest.fixture
async def served(system):
    """make_app(system) behind our AppRunner on a loopback port: (host, port)."""
    runner = AppRunner(make_app(system), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][:2]
    await runner.cleanup()


async def exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send raw bytes, read until the server closes or a whole response has arrived."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(_one_response(reader), DEADLINE)
    finally:
        writer.close()


async def _one_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    _, headers, _ = parse(head)
    if "content-length" in headers:
        return head + await reader.readexactly(int(headers["content-length"]))
    return head + await reader.read()


def get(target: str, *headers: bytes) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: x\r\n".encode() + AUTH + b"".join(headers) + b"\r\n"


def post_with_key(key: str) -> bytes:
    body = b'{"dataset": "token_transfers", "format": "csv"}'
    return (
        b"POST /v1/export/dataset HTTP/1.1\r\nHost: x\r\n" + AUTH
        + f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )  # fmt: skip


async def test_a_10000_character_idempotency_key_is_431_in_json(served, system):
    error = assert_json_refusal(await exchange(served, post_with_key(long(10_000))), 431)
    assert error["code"] == "header_too_large" and str(HEADER_FIELD_BYTES) in error["message"]
    assert system.list(limit=10)[0] == []  # refused before anything was recorded


async def test_a_long_but_allowed_idempotency_key_is_still_checked_by_the_app(served):
    raw = await exchange(served, post_with_key(long(1000)))
    error = assert_json_refusal(raw, 400, "invalid_request")
    assert "Idempotency-Key" in error["message"]


async def test_a_header_name_over_the_limit_is_431(served):
    raw = await exchange(served, get("/v1/export/jobs", f"X-{long(10_000)}: 1\r\n".encode()))
    assert_json_refusal(raw, 431, "header_too_large")


async def test_too_many_headers_is_431(served):
    many = [f"X-H{i}: v\r\n".encode() for i in range(MAX_HEADERS + 1)]
    raw = await exchange(served, get("/v1/export/jobs", *many))
    assert str(MAX_HEADERS) in assert_json_refusal(raw, 431, "too_many_headers")["message"]


async def test_a_request_line_over_the_limit_is_400(served):
    raw = await exchange(served, get(f"/v1/export/jobs?cursor={long(REQUEST_LINE_BYTES + 1)}"))
    error = assert_json_refusal(raw, 400, "request_line_too_long")
    assert str(REQUEST_LINE_BYTES) in error["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"cursor={long(10_000)}", "cursor"),
        (f"status={long(10_000)}", "status"),
        (f"dataset={long(10_000)}", "dataset"),
        (f"{long(10_000)}=1", "query parameter"),
        (f"status=queued&status={long(10_000)}", "more than once"),
    ],
)
async def test_long_query_values_within_the_limit_are_refused_without_echo(served, query, field):
    raw = await exchange(served, get(f"/v1/export/jobs?{query}"))
    assert field in assert_json_refusal(raw, 400)["message"]


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_method"),
        (f"GET /{long(200)} HTTP/1.1\r\nHost: x\r\nBad Header: {long(50)}\r\n\r\n".encode(), None),
        (f"{long(300)}\r\n\r\n".encode(), None),
    ],
)
async def test_unparsable_requests_are_400_in_json(served, request_bytes, code):
    assert_json_refusal(await exchange(served, request_bytes), 400, code)


def test_serve_refuses_an_oversized_header_in_json(tmp_path):
    """The same through the real `serve` command, on a plain blocking socket."""
    with ServeProcess(tmp_path / "data", tmp_path / "serve.log", env=child_env()) as server:
        server.wait_for_url()
        with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
            sock.sendall(post_with_key(long(10_000)))
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        assert_json_refusal(raw, 431, "header_too_large")
        assert server.stop() == 0
    log = server.log_path.read_text()
    assert FILL * 8 not in log and "Traceback" not in log
