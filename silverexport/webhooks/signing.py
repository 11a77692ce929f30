"""Stripe-style signatures: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

The timestamp is inside the signed text, so a receiver that checks it against its own clock
(a tolerance of a few minutes) refuses a captured delivery replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>`, keyed by the secret's UTF-8 bytes."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: parse the header, compare in constant time, check the age."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        (t_text,) = parts["t"]
        timestamp = int(t_text)
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body)
    matched = False
    for candidate in parts.get("v1", []):
        matched |= hmac.compare_digest(candidate, expected)
    current = time.time() if now is None else now
    return matched and abs(current - timestamp) <= tolerance
