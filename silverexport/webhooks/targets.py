"""Where a webhook may point: URL rules and the SSRF policy (SPEC §9).

A receiver's host must not be, nor resolve to, an address inside our own networks (loopback,
private, link-local, multicast, unspecified, reserved, cloud metadata) unless the operator
allows it in SILVEREXPORT_WEBHOOK_ALLOW_HOSTS. The policy is checked at registration and again
by the resolver the delivery client connects through, so the address checked is the address
connected to: DNS answering differently a moment later cannot slip past it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Protocol

from yarl import URL

from ..errors import ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2048
# Public addresses that still answer as a cloud's instance metadata or host agent.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.ASCII | re.IGNORECASE)


class TargetRefused(ValidationError):
    """The URL's host is, or resolves to, an address webhooks may not reach."""

    def __init__(self, message: str):
        super().__init__(message, field="url", code="webhook_target_refused")


class Resolver(Protocol):
    """Host name to addresses. The default asks the system; tests give a table of their own."""

    async def addresses(self, host: str) -> list[str]: ...


class SystemResolver:
    """getaddrinfo on the loop's executor: the event loop never waits on DNS."""

    async def addresses(self, host: str) -> list[str]:
        import asyncio  # here, not at the top: a one-shot `export` never resolves a host

        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise TargetRefused(f'"url": the host {host!r} does not resolve ({e})') from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_url(value: object) -> URL:
    """The URL if it is one a webhook may have (http or https, a host, nothing hidden)."""
    if not isinstance(value, str) or not value:
        raise ValidationError('"url" must be a non-empty string', field="url")
    if len(value) > MAX_URL_LENGTH:
        raise ValidationError(f'"url" is longer than {MAX_URL_LENGTH} characters', field="url")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValidationError('"url" must not contain spaces or control characters', field="url")
    try:
        url = URL(value)
        host = url.raw_host
        url.port  # noqa: B018 - an out-of-range port raises here
    except (ValueError, TypeError) as e:
        raise ValidationError(f'"url" is not a valid URL: {e}', field="url") from None
    if url.scheme not in ("http", "https"):
        raise ValidationError('"url" must be an http:// or https:// URL', field="url")
    if not host:
        raise ValidationError('"url" has no host', field="url")
    if url.raw_user is not None or url.raw_password is not None:
        raise ValidationError('"url" must not carry a user name or password', field="url")
    if url.raw_fragment:
        raise ValidationError('"url" must not have a #fragment (it is never sent)', field="url")
    if literal_address(host) is None and _NUMERIC_LABEL.fullmatch(host.rstrip(".").split(".")[-1]):
        # "127.1", "2130706433", "0x7f.0.0.1": resolvers read these as addresses.
        raise ValidationError(
            f'"url": {host!r} is neither a host name nor a canonical IP address', field="url"
        )
    return url


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: Address) -> str | None:
    """Why webhooks may not reach `address` (None: it is an ordinary public address)."""
    inner = _embedded_ipv4(address)
    if inner is not None and (why := forbidden_reason(inner)):
        return f"{why} (inside {address})"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not address.is_global:
        return "not a public address"
    return None


class TargetPolicy:
    """The SSRF rules with the operator's exceptions (host names, addresses, CIDR blocks)."""

    def __init__(self, allow_hosts: str = ""):
        self.hosts: set[str] = set()
        self.networks: list[Network] = []
        for item in (part.strip() for part in allow_hosts.split(",")):
            if not item:
                continue
            try:
                self.networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", item):
                    raise ValidationError(
                        "SILVEREXPORT_WEBHOOK_ALLOW_HOSTS must list host names, addresses and "
                        f"CIDR blocks, separated by commas; {item!r} is none of these"
                    ) from None
                self.hosts.add(item.lower().rstrip("."))

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def refusal(self, host: str, addresses: Iterable[str]) -> str | None:
        """Why `host` resolving to `addresses` may not be reached, or None if it may."""
        if self.host_allowed(host):
            return None
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if any(address in net for net in self.networks):
                continue
            why = forbidden_reason(address)
            if why is not None:
                what = f"is {why}" if literal_address(host) else f"resolves to {address}, {why}"
                return f'"url": {host} {what}; webhooks may not reach it'
        return None

    async def check(self, url: URL, resolver: Resolver) -> list[str]:
        """The addresses of the URL's host once they pass; TargetRefused otherwise."""
        host = url.raw_host or ""
        literal = literal_address(host)
        addresses = [str(literal)] if literal else await resolver.addresses(host)
        if not addresses:
            raise TargetRefused(f'"url": the host {host!r} has no address')
        why = self.refusal(host, addresses)
        if why is not None:
            raise TargetRefused(why)
        return addresses
