"""Synthetic token transfers shared by the benchmarks (not the demo data: plainer, faster)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

START_MS = 1_700_000_000_000
STEP_MS = 1_500


def transfer_rows(n: int, start: int = 0, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Plausible transfers: 10 targets, 3 networks, increasing times, varied decimals."""
    rnd = random.Random(seed * 1_000_003 + start)
    symbols = ["USDC", "WETH", "PEPE", None, 'Quote "Q", Inc.', "Ünïcode ✓"]
    for i in range(start, start + n):
        yield {
            "target_id": f"t{rnd.randrange(10)}",
            "network": rnd.choice(("ethereum", "arbitrum", "base")),
            "block_number": 18_000_000 + i // 4,
            "block_time": START_MS + i * STEP_MS,
            "tx_hash": f"0x{rnd.getrandbits(256):064x}",
            "log_index": rnd.randrange(300),
            "token_address": f"0x{rnd.getrandbits(160):040x}",
            "token_symbol": rnd.choice(symbols),
            "from_address": f"0x{rnd.getrandbits(160):040X}",
            "to_address": f"0x{rnd.getrandbits(160):040x}",
            "amount": f"{rnd.getrandbits(rnd.choice((8, 40, 90)))}.{rnd.randrange(10**6):06d}",
            "direction": rnd.choice(("in", "out", None)),
        }
