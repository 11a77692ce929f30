"""One page of the jobs list (SPEC §5): the filters checked, the views' newest-first query
and the opaque cursor that keysets the next page. Apart from the system, which only hands it
a reader, so the paging rules live in one place that HTTP and the CLI share.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson

from .errors import ValidationError
from .events.views import State, newest_states, to_view
from .model import JobStatus, JobView

LIST_MAX = 500


def _encode_cursor(created_seq: int) -> str:
    """Opaque to clients: the position in the log where the next page starts."""
    return base64.urlsafe_b64encode(orjson.dumps({"before": created_seq})).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        before = orjson.loads(raw)["before"]
        if isinstance(before, bool) or not isinstance(before, int):
            raise ValueError
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise ValidationError(
            '"cursor" is not a cursor this server issued', field="cursor"
        ) from None
    return before


def query_jobs(
    db: Any,
    *,
    newest: Callable[..., list[State]] = newest_states,
    tenant: str | None = None,
    status: JobStatus | str | None = None,
    dataset: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[JobView], str | None]:
    """One page of the jobs view, newest first, keyset-paginated by the JobRequested seq."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIST_MAX:
        raise ValidationError(f'"limit" must be between 1 and {LIST_MAX}', field="limit")
    equal: dict[str, Any] = {}
    if tenant is not None:
        equal["tenant"] = tenant
    if status is not None:
        try:
            equal["status"] = JobStatus(status).value
        except ValueError:
            valid = ", ".join(s.value for s in JobStatus)
            raise ValidationError(f'"status" must be one of {valid}', field="status") from None
    if dataset is not None:
        equal["dataset"] = dataset
    before = None if cursor is None else _decode_cursor(cursor)
    states = newest(db, equal=equal, before_seq=before, limit=limit + 1)
    views = [to_view(state) for state in states]
    next_cursor = None
    if len(views) > limit:
        views = views[:limit]
        last_created_seq = states[limit - 1]["created_seq"]
        next_cursor = _encode_cursor(last_created_seq)
    return views, next_cursor
