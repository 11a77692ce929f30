"""A resolver with a table, for tests.

It stands for DNS, which a test cannot change: the environment the SSRF policy is checked
against, never the thing under test. It sends no packet anywhere, so a test (or a fuzzer
registering made-up host names) never queries a real name server.
"""

from __future__ import annotations

from silverexport.webhooks import TargetRefused


class TableResolver:
    """Host names answered from a dict that a test may change; anything else does not exist."""

    def __init__(self, table: dict[str, list[str]] | None = None):
        self.table = dict(table or {})
        self.asked: list[str] = []

    async def addresses(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise TargetRefused(f'"url": the host {host!r} does not resolve')
        return list(self.table[host])
