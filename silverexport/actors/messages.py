"""The small immutable messages actors exchange."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..model import ExportRequest


@dataclass(frozen=True, slots=True)
class Load:
    """The supervisor's start-up (catch up the views, hold the active jobs); asked once, so a
    failure reaches the opener, which then closes everything it opened."""


@dataclass(frozen=True, slots=True)
class Submit:
    request: ExportRequest
    tenant: str
    idempotency_key: str | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    job_id: str
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """Tells an ExportActor to do its one job."""


@dataclass(frozen=True, slots=True)
class Progress:
    job_id: str
    attempt: int
    rows: int


@dataclass(frozen=True, slots=True)
class Done:
    job_id: str
    attempt: int
    rows: int
    bytes: int
    sha256: str
    truncated: bool
    file_name: str


@dataclass(frozen=True, slots=True)
class Failed:
    job_id: str
    attempt: int
    error: str
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """Periodic housekeeping: catch up with other writers, recover orphans, expire, schedule.

    `handled` is set once the Tick has been dealt with: the timer sends no new Tick before
    that, so Ticks cannot pile up in the mailbox (ahead of submits) while each one waits on a
    locked event log.
    """

    handled: threading.Event | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A slot may have freed up: start queued jobs."""


@dataclass(frozen=True, slots=True)
class Prune:
    """Expire every job past its retention now; answers with the expired job ids."""


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Read what other processes appended; answers with the number of events applied."""


@dataclass(frozen=True, slots=True)
class Wake:
    """The log grew (another node's NOTIFY): catch up now rather than at the next Tick.
    `pending` is set while one is on its way, so a burst of appends sends one, not many."""

    pending: threading.Event
