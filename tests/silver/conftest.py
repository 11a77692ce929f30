"""Fixtures for the Silver store tests: a real store on each backend, and valid rows.

`store` is the contract fixture: every test that uses it runs against the SQLite file and
against PostgreSQL (a fresh database on the session's real server). `sqlite_store` is for
the tests of SQLite's own internals. `sql(store, ...)` runs plain SQL on either, as another
program would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from silverexport.silver.port import SilverBackend
from silverexport.silver.store import SilverStore

Row = dict[str, Any]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "silver.db"


@pytest.fixture
def sqlite_store(store_path: Path) -> Iterator[SilverStore]:
    with SilverStore(store_path) as s:
        yield s


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, store_path: Path) -> Iterator[SilverBackend]:
    """The Silver store on each backend (the port's contract suite)."""
    if request.param == "sqlite":
        with SilverStore(store_path) as s:
            yield s
        return
    from silverexport.silver.postgres_store import PostgresSilverStore

    with PostgresSilverStore(request.getfixturevalue("postgres_url")) as s:
        yield s


def sql(store: SilverBackend, statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """Run `statement` on the store's database through a connection of its own, committed,
    as another program would; the rows it returns, if any. Placeholders: `?` on SQLite,
    `%s` on PostgreSQL (write the SQL for both with no parameters, or branch on `is_pg`)."""
    if isinstance(store, SilverStore):
        import sqlite3

        conn = sqlite3.connect(store.path, isolation_level=None)
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


def is_pg(store: SilverBackend) -> bool:
    return not isinstance(store, SilverStore)


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
