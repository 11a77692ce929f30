"""What the log says about webhooks and deliveries: pure folds, ids, and the job events that
notify. The dispatcher keeps only what is pending; listing and audit read the same events."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from ..events.types import (
    DeliveryAttempted,
    DeliveryFailed,
    DeliveryGaveUp,
    DeliveryScheduled,
    DeliverySucceeded,
    Event,
    JobCancelled,
    JobCompleted,
    JobExpired,
    JobFailed,
    WebhookDeleted,
    WebhookRegistered,
)
from ..timeutil import parse_canonical

EVENT_NAMES = ("job.completed", "job.failed", "job.cancelled", "job.expired")
WEBHOOK_PREFIX = "wh_"
DELIVERY_PREFIX = "dlv_"
OUTCOMES = ("succeeded", "failed", "refused", "gave_up")  # the metric's `outcome` label


def notification_of(event: Event) -> str | None:
    """The webhook event name a job event finishes the job with (None: it does not)."""
    match event:
        case JobCompleted():
            return "job.completed"
        case JobFailed(will_retry=False):
            return "job.failed"
        case JobCancelled():
            return "job.cancelled"
        case JobExpired():
            return "job.expired"
    return None


def delivery_id(webhook_id: str, job_id: str, event_name: str) -> str:
    """Derived, not random: every node that sees the job finish names the same delivery, so
    scheduling it is an append at version 0 that only one of them can win."""
    digest = hashlib.sha256(f"{webhook_id}\n{job_id}\n{event_name}".encode()).hexdigest()
    return DELIVERY_PREFIX + digest[:32]


@dataclass(frozen=True, slots=True)
class Webhook:
    webhook_id: str
    tenant: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: str
    seq: int  # its registration's: jobs finishing after it are notified
    version: int = 1

    def to_document(self, *, with_secret: bool = False) -> dict:
        """SPEC §9's field order: the secret (creation only) comes before created_at."""
        document = {"webhook_id": self.webhook_id, "url": self.url, "events": list(self.events)}
        if with_secret:
            document["secret"] = self.secret
        document["created_at"] = self.created_at
        return document


def fold_webhook(
    state: Webhook | None, stream_id: str, seq: int, version: int, at: str, event: Event
) -> Webhook | None:
    """A webhook after one event of its stream; None once deleted."""
    if isinstance(event, WebhookRegistered):
        return Webhook(
            stream_id, event.tenant, event.url, tuple(event.events), event.secret, at, seq
        )
    if isinstance(event, WebhookDeleted) or state is None:
        return None
    return replace(state, version=version)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A pending delivery: what to send, and where its stream stands."""

    delivery_id: str
    tenant: str
    webhook_id: str
    job_id: str
    event_name: str
    body: str
    version: int
    attempts: int = 0
    due: float = 0.0  # epoch seconds of the next attempt
    claimed_by: str | None = None  # set while an attempt is under way


def fold_delivery(
    state: Delivery | None, stream_id: str, version: int, at: str, event: Event
) -> Delivery | None:
    """A delivery after one event of its stream; None once it is over (or not one)."""
    match event:
        case DeliveryScheduled():
            return Delivery(
                stream_id,
                event.tenant,
                event.webhook_id,
                event.job_id,
                event.event_type,
                event.body,
                version,
                due=parse_canonical(at).timestamp(),
            )
        case DeliverySucceeded() | DeliveryGaveUp():
            return None
    if state is None:
        return None
    match event:
        case DeliveryAttempted():
            return replace(state, version=version, attempts=event.attempt, claimed_by=event.owner)
        case DeliveryFailed():
            due = parse_canonical(event.next_attempt_at).timestamp()
            return replace(state, version=version, due=due, claimed_by=None)
    return replace(state, version=version)
