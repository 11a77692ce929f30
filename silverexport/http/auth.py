"""Bearer keys and tenants: `SILVEREXPORT_API_KEYS` is a comma-separated `tenant:key` list."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from aiohttp import hdrs, web

from ..errors import ValidationError
from .errors import HTTPError

PUBLIC_PATHS = frozenset({"/v1/openapi.json"})
# Exactly the scheme, as the contract says: clients compare this header verbatim.
CHALLENGE = "Bearer"


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """The configured keys; `tenant_for` compares in constant time against every key."""

    entries: tuple[tuple[bytes, str], ...]

    @classmethod
    def parse(cls, text: str) -> ApiKeys:
        entries: dict[bytes, str] = {}
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            tenant, sep, key = item.partition(":")
            tenant, key = tenant.strip(), key.strip()
            if not sep or not tenant or not key:
                raise ValidationError(
                    "SILVEREXPORT_API_KEYS must be a comma-separated list of tenant:key pairs"
                )
            secret = key.encode()
            if entries.get(secret, tenant) != tenant:
                raise ValidationError("SILVEREXPORT_API_KEYS gives one key to two tenants")
            entries[secret] = tenant
        return cls(tuple(entries.items()))

    def tenant_for(self, presented: str) -> str | None:
        """The key's tenant, or None. Every key is compared, so timing tells nothing."""
        candidate = presented.encode("utf-8", "surrogateescape")
        found = None
        for secret, tenant in self.entries:
            if hmac.compare_digest(candidate, secret) and found is None:
                found = tenant
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def needs_auth(path: str) -> bool:
    """SPEC §5: every /v1 route except the OpenAPI document."""
    return path.startswith("/v1/") and path not in PUBLIC_PATHS


TENANT = web.RequestKey("tenant", str)


def tenant_of(request: web.Request, keys: ApiKeys) -> str:
    """The tenant of the request's bearer key; a 401 (with the challenge) when there is none."""
    token = bearer_token(request.headers.get(hdrs.AUTHORIZATION))
    if token is None:
        raise _unauthorized("this route needs an Authorization: Bearer <key> header")
    tenant = keys.tenant_for(token)
    if tenant is None:
        raise _unauthorized("the API key is not valid")
    return tenant


def _unauthorized(message: str) -> HTTPError:
    return HTTPError(401, "unauthorized", message, headers={hdrs.WWW_AUTHENTICATE: CHALLENGE})
