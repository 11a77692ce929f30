"""The delivery client's side of the SSRF policy: an aiohttp resolver that connects only to
checked addresses. Apart from targets.py so that the policy loads without aiohttp."""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .targets import Resolver, TargetPolicy


class CheckedResolver(AbstractResolver):
    """The delivery client's resolver: resolves, applies the policy, and returns only checked
    addresses, which the connector then connects to. A refusal raises TargetRefused."""

    def __init__(self, policy: TargetPolicy, resolver: Resolver):
        self.policy = policy
        self.resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self.policy.check(URL.build(scheme="http", host=host), self.resolver)
        results: list[ResolveResult] = []
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            kind = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            if family not in (socket.AF_UNSPEC, kind):
                continue
            results.append(
                ResolveResult(hostname=host, host=text, port=port, family=kind, proto=0, flags=0)
            )
        if not results:
            raise OSError(f"{host} has no address of the family asked for")
        return results

    async def close(self) -> None:
        return None
