"""How a store's failure reaches callers: one ExportStorageError whose message is one line
and holds no secret, whichever library (boto3, the OS) raised it."""

from __future__ import annotations

import os
import re

from ..errors import ExportStorageError

# `scheme://user:password@host` or `scheme://token@host` in a driver's message.
_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s:\"']*)(:[^/@\s\"']*)?@"
)
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def masked(text: str) -> str:
    """`text` on one line, credentials in URLs as `***` and no AWS secret echoed back."""
    line = " ".join(str(text).split())
    line = _USERINFO.sub(_mask, line)
    for name in _SECRET_VARIABLES:
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            line = line.replace(secret, "***")
    return line


def _mask(m: re.Match[str]) -> str:
    user = m["user"]
    return f"{m['scheme']}{user}:***@" if m.group(3) is not None else f"{m['scheme']}***@"


def why(error: BaseException) -> str:
    """The reason an error gives, masked; its type's name when it says nothing."""
    # an OSError says "No space left on device", not "[Errno 28] ... '/the/partial/path'"
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return masked(reason) or type(error).__name__


def failure(store_url: str, doing: str, error: BaseException) -> ExportStorageError:
    """The error to raise when the store at `store_url` could not `doing` (a verb phrase)."""
    if isinstance(error, ExportStorageError):
        return error
    store = masked(store_url)
    return ExportStorageError(f"the export store {store} could not {doing}: {why(error)}")
