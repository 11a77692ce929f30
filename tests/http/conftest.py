"""HTTP test fixtures: a real ExportSystem on tmp_path served by the real app."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from silverexport.http import make_app
from silverexport.model import JobView
from silverexport.silver.writers import export_to_file
from silverexport.system import ExportSystem

KEYS = "alice:k1,bob:k2"
ALICE = {"Authorization": "Bearer k1"}
BOB = {"Authorization": "Bearer k2"}
WAIT = 30.0
WALLET = "0x" + "aB" * 20  # mixed case on purpose: the legacy route matches any case


def transfer_rows(n: int, *, target: str = "t1", start: int = 0) -> list[dict[str, Any]]:
    """Token transfers; every third one is from WALLET, every fifth one to it (other case)."""
    other = "0x" + "11" * 20
    return [
        {
            "target_id": target,
            "network": "ethereum" if i % 2 else "arbitrum",
            "block_number": 1000 + i,
            "block_time": 1_700_000_000_000 + i * 1000,
            "tx_hash": f"0x{i:064x}",
            "log_index": i % 7,
            "token_address": "0x" + "cd" * 20,
            "token_symbol": None if i % 4 == 0 else 'US"D, C\n',
            "from_address": WALLET if i % 3 == 0 else other,
            "to_address": WALLET.upper().replace("0X", "0x") if i % 5 == 0 else other,
            "amount": f"{i}.000000000000000001",
            "direction": "in" if i % 2 else "out",
        }
        for i in range(start, start + n)
    ]


def wallet_rows(n: int) -> int:
    """How many of transfer_rows(n) touch WALLET."""
    return sum(1 for i in range(n) if i % 3 == 0 or i % 5 == 0)


class Gate:
    """An export_fn that holds each export before it reads anything until the gate opens.

    Lets a test see a job deterministically queued or running; cancellation still works.
    """

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()

    def __call__(self, *args: Any, should_stop: Callable[[], bool], **kwargs: Any) -> Any:
        self.entered.set()
        while not self.opened.wait(0.01):
            if should_stop():
                break
        return export_to_file(*args, should_stop=should_stop, **kwargs)


@pytest.fixture
def open_system(open_system):
    """The suite's open_system, with the keys alice:k1 and bob:k2."""

    def _open(**kwargs: Any) -> ExportSystem:
        kwargs.setdefault("api_keys", KEYS)
        return open_system(**kwargs)

    return _open


@pytest.fixture
def system(open_system) -> ExportSystem:
    system = open_system()
    system.store.ingest("token_transfers", transfer_rows(60))
    return system


@pytest.fixture
def serve(aiohttp_client):
    """serve(system) -> a test client of make_app(system) on a real loopback port."""

    async def _serve(system: ExportSystem):
        return await aiohttp_client(make_app(system))

    return _serve


@pytest.fixture
async def client(serve, system):
    return await serve(system)


async def wait_done(system: ExportSystem, job_id: str) -> JobView:
    """Wait for the job to finish without blocking the loop that serves the requests."""
    return await asyncio.to_thread(system.wait, job_id, WAIT)


async def create(client, body: dict[str, Any], headers: dict[str, str] = ALICE) -> dict[str, Any]:
    resp = await client.post("/v1/export/dataset", json=body, headers=headers)
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def error_of(resp, status: int) -> dict[str, str]:
    """Assert an error response of SPEC §5's shape and return its inner object."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    document = await resp.json()
    assert set(document) == {"error"} and set(document["error"]) == {"code", "message"}
    assert document["error"]["message"] and "Traceback" not in document["error"]["message"]
    return document["error"]


async def healthz_until(client, status: int) -> dict:
    """/healthz once it answers `status`: its answer is kept for about a second, so the first
    call after a change may still tell the state before it."""
    deadline = time.monotonic() + WAIT
    while True:
        resp = await client.get("/healthz")
        if resp.status == status:
            if status == 503:
                assert resp.headers["Retry-After"].isdigit()
            return await resp.json()
        assert time.monotonic() < deadline, f"/healthz not {status} after {WAIT} s"
        await asyncio.sleep(0.1)
