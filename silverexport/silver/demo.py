"""Synthetic but realistic Silver rows for demos and manual testing, deterministic per seed.

The text is deliberately awkward (commas, quotes, newlines, Unicode) and decimals span tiny
to huge, so that a demo export exercises every writer rule.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from .store import SilverStore

TARGETS = ("t1", "t2", "t3", "t4")
NETWORKS = ("ethereum", "arbitrum", "base", "hyperliquid")
COINS = ("BTC", "ETH", "SOL", "HYPE", "kPEPE")
SYMBOLS = ("USDC", "WETH", "PEPE", 'Quote "Q", Inc.', "Ünïcödé ✓", "multi\nline", "🚀MOON")
EVENTS = ("Transfer", "Swap", "Approval", "Deposit, Withdraw")
START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
IST = timezone(timedelta(hours=5, minutes=30))


class _Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def hex(self, digits: int, upper: bool = False) -> str:
        text = f"0x{self.r.getrandbits(digits * 4):0{digits}x}"
        return text.upper().replace("0X", "0x") if upper else text

    def decimal(self, signed: bool = True) -> str:
        """Tiny, ordinary and huge exact decimals, as text (sometimes an integer)."""
        kind = self.r.random()
        if kind < 0.1:
            body = "0." + "0" * self.r.randrange(10, 25) + str(self.r.randrange(1, 10))
        elif kind < 0.2:
            body = f"{self.r.getrandbits(100)}.{self.r.randrange(10**9)}"
        elif kind < 0.3:
            body = str(self.r.randrange(10**6))
        else:
            body = f"{self.r.randrange(10**5)}.{self.r.randrange(10**6):06d}".rstrip("0")
            body = body.rstrip(".")
        negative = signed and self.r.random() < 0.3 and body.strip("0.") != ""
        return "-" + body if negative else body

    def head(self, hl: bool = False) -> dict[str, Any]:
        return {
            "target_id": self.r.choice(TARGETS),
            "network": "hyperliquid" if hl else self.r.choice(NETWORKS[:3]),
        }

    def time(self, i: int) -> int | str:
        ms = START_MS + i * 60_000 + self.r.randrange(60_000)
        if self.r.random() < 0.8:
            return ms
        # Now and then RFC 3339 with an offset and microseconds, to show normalisation.
        local = datetime.fromtimestamp(ms / 1000, IST) + timedelta(microseconds=456)
        return local.isoformat()

    def maybe(self, value: Any, p: float = 0.2) -> Any:
        return None if self.r.random() < p else value


def _token_transfers(g: _Gen, i: int) -> dict[str, Any]:
    return {
        **g.head(),
        "block_number": 21_000_000 + i,
        "block_time": g.time(i),
        "tx_hash": g.hex(64),
        "log_index": g.r.randrange(400),
        "token_address": g.hex(40),
        "token_symbol": g.maybe(g.r.choice(SYMBOLS)),
        "from_address": g.hex(40, upper=g.r.random() < 0.3),
        "to_address": g.hex(40),
        "amount": g.decimal(signed=False),
        "direction": g.maybe(g.r.choice(("in", "out"))),
    }


def _native_balance_deltas(g: _Gen, i: int) -> dict[str, Any]:
    return {
        **g.head(),
        "block_number": 21_000_000 + i,
        "block_time": g.time(i),
        "tx_hash": g.hex(64),
        "address": g.hex(40),
        "delta": g.decimal(),
        "balance_after": g.maybe(g.decimal(signed=False)),
    }


def _decoded_events(g: _Gen, i: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "from": g.hex(40),
        "value": g.decimal(signed=False),
        "memo": g.r.choice(("", "gm, fren", 'said "hi"', "línea\nnueva", "日本語")),
        "nested": {"ok": g.r.random() < 0.5, "list": [1, 2.5, None], "big": 2**70},
    }
    return {
        **g.head(),
        "block_number": 21_000_000 + i,
        "block_time": g.time(i),
        "tx_hash": g.hex(64),
        "log_index": g.r.randrange(400),
        "contract_address": g.hex(40),
        "event_name": g.r.choice(EVENTS),
        "decoded_fields": fields if g.r.random() < 0.9 else {},
    }


def _hl_fills(g: _Gen, i: int) -> dict[str, Any]:
    return {
        **g.head(hl=True),
        "time": g.time(i),
        "coin": g.r.choice(COINS),
        "side": g.r.choice(("B", "A")),
        "px": g.decimal(signed=False),
        "sz": g.decimal(signed=False),
        "dir": g.r.choice(("Open Long", "Close Short", "Liquidated, Cross")),
        "closed_pnl": g.decimal(),
        "fee": g.decimal(signed=False),
        "fee_token": g.r.choice(("USDC", "HYPE")),
        "start_position": g.decimal(),
        "crossed": g.r.random() < 0.5,
        "oid": g.r.randrange(2**40),
        "tid": g.r.randrange(2**50),
        "hash": g.hex(64),
    }


def _hl_funding(g: _Gen, i: int) -> dict[str, Any]:
    return {
        **g.head(hl=True),
        "time": g.time(i),
        "coin": g.r.choice(COINS),
        "usdc": g.decimal(),
        "szi": g.decimal(),
        "funding_rate": g.decimal(),
    }


def _positions(g: _Gen, i: int) -> dict[str, Any]:
    return {
        **g.head(hl=True),
        "as_of": g.time(i),
        "coin": g.r.choice(COINS),
        "size": g.decimal(),
        "entry_px": g.decimal(signed=False),
        "position_value": g.decimal(signed=False),
        "unrealized_pnl": g.decimal(),
        "leverage": str(g.r.randrange(1, 51)),
        "liquidation_px": g.maybe(g.decimal(signed=False)),
        "margin_used": g.decimal(signed=False),
    }


MAKERS: dict[str, Callable[[_Gen, int], dict[str, Any]]] = {
    "token_transfers": _token_transfers,
    "native_balance_deltas": _native_balance_deltas,
    "decoded_events": _decoded_events,
    "hl_fills": _hl_fills,
    "hl_funding": _hl_funding,
    "positions": _positions,
}


def rows_for(dataset: str, rows: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """`rows` synthetic rows of `dataset`, streamed; the same seed gives the same rows."""
    g = _Gen(f"{seed}:{dataset}")
    make = MAKERS[dataset]
    for i in range(rows):
        yield make(g, i)


def generate(store: SilverStore, rows: int = 1000, *, seed: int = 7) -> dict[str, int]:
    """Ingest `rows` rows into each of the six datasets; returns the rows added per dataset."""
    return {name: store.ingest(name, rows_for(name, rows, seed)) for name in MAKERS}
