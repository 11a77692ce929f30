"""Fixtures for the Silver store tests: a real SQLite store in tmp_path and valid rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from silverexport.silver.store import SilverStore

Row = dict[str, Any]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "silver.db"


@pytest.fixture
def store(store_path: Path) -> Iterator[SilverStore]:
    with SilverStore(store_path) as s:
        yield s


def _transfer(**overrides: Any) -> Row:
    row: Row = {
        "target_id": "t1",
        "network": "ethereum",
        "block_number": 100,
        "block_time": "2024-01-01T00:00:00Z",
        "tx_hash": "0xabc",
        "log_index": 0,
        "token_address": "0xtoken",
        "token_symbol": "USDC",
        "from_address": "0x" + "a" * 40,
        "to_address": "0x" + "b" * 40,
        "amount": "1.5",
        "direction": "in",
    }
    row.update(overrides)
    return row


def _fill(**overrides: Any) -> Row:
    row: Row = {
        "target_id": "t1",
        "network": "hyperliquid",
        "time": "2024-01-01T00:00:00Z",
        "coin": "BTC",
        "side": "B",
        "px": "42000.5",
        "sz": "0.01",
        "dir": "Open Long",
        "closed_pnl": "0",
        "fee": "0.1",
        "fee_token": "USDC",
        "start_position": "0",
        "crossed": True,
        "oid": 1,
        "tid": 2,
        "hash": "0xh",
    }
    row.update(overrides)
    return row


def _event(**overrides: Any) -> Row:
    row: Row = {
        "target_id": "t1",
        "network": "ethereum",
        "block_number": 1,
        "block_time": "2024-01-01T00:00:00Z",
        "tx_hash": "0xabc",
        "log_index": 0,
        "contract_address": "0xc",
        "event_name": "Transfer",
        "decoded_fields": {"value": "1", "n": 2},
    }
    row.update(overrides)
    return row


@pytest.fixture
def transfer() -> Callable[..., Row]:
    return _transfer


@pytest.fixture
def fill() -> Callable[..., Row]:
    return _fill


@pytest.fixture
def event() -> Callable[..., Row]:
    return _event
