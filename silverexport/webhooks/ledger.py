"""DeliveryLedger: the deliveries this process knows are pending, kept in step with the log.

It follows the log like the supervisor does: a job that finishes (here or in any process)
schedules one delivery per matching webhook; every attempt is claimed by an append at the
stream's expected version, so exactly one process makes it; every outcome is appended. After a
crash the pending set is a replay of the webhook events (through their own index), and the
job events read since the last position saved. Only active webhooks and pending deliveries
stay in memory. Every method runs on the service's one database thread.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ..config import Settings
from ..errors import ConcurrencyError, SilverExportError
from ..events.types import (
    DeliveryAttempted,
    DeliveryFailed,
    DeliveryGaveUp,
    DeliveryScheduled,
    DeliverySucceeded,
    Event,
)
from ..events.views import to_view
from ..timeutil import format_time
from .state import Delivery, Webhook, delivery_id, fold_delivery, fold_webhook, notification_of
from .store import BATCH, WEBHOOK_TYPES, Row, WebhookLog, decode_row

log = logging.getLogger(__name__)

POSITION_FILE = "webhooks.position"
POSITION_SAVE_SECONDS = 1.0
FOLLOW_BATCHES = 5  # per step, so registrations never wait behind a long catch-up
_TERMINAL_JOB_TYPES = frozenset({"JobCompleted", "JobFailed", "JobCancelled", "JobExpired"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to, as the dispatcher saw it."""

    ok: bool
    status: int | None = None
    error: str | None = None
    refused: bool = False


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this process has claimed an attempt of, with what it needs to send it."""

    delivery: Delivery
    url: str
    secret: str


class DeliveryLedger:
    def __init__(
        self,
        settings: Settings,
        store: WebhookLog,
        *,
        owner_id: str,
        is_alive: Callable[[str], bool],
        on_outcome: Callable[[str], None],
    ):
        self.settings = settings
        self.store = store
        self.owner_id = owner_id
        self.is_alive = is_alive
        self.on_outcome = on_outcome
        self.webhooks: dict[str, Webhook] = {}  # active ones
        self.pending: dict[str, Delivery] = {}
        self.due: list[tuple[float, str]] = []  # heap; stale entries are skipped
        self.unrecorded: dict[str, Outcome] = {}  # outcomes whose append failed, retried
        self.state_seq = 0  # webhook and delivery events applied up to here
        self.job_seq = 0  # job events considered up to here
        self.position_path = Path(settings.data_dir) / POSITION_FILE
        self.saved_at = 0.0

    # -- start-up ------------------------------------------------------------------------

    def load(self) -> None:
        """Replay the webhook streams, then resume job events where this data dir left off."""
        with self.store.snapshot():
            last = self.store.last_seq()
            for row in self.store.webhook_rows(last):
                self._apply(row)
        self.state_seq = last
        if self.webhooks:
            oldest = min(hook.seq for hook in self.webhooks.values())
            self.job_seq = min(last, max(self._saved_position(), oldest - 1))
        else:
            self.job_seq = last  # no webhook: no job that finished so far notifies anyone

    def _saved_position(self) -> int:
        try:
            return int(self.position_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def save_position(self, *, force: bool = False) -> None:
        """The job seq up to which deliveries are scheduled; lagging only costs a re-check."""
        now = time.monotonic()
        if not force and now - self.saved_at < POSITION_SAVE_SECONDS:
            return
        self.saved_at = now
        tmp = self.position_path.with_suffix(".tmp")
        try:
            tmp.write_text(str(self.job_seq))
            os.replace(tmp, self.position_path)
        except OSError as e:
            log.warning("could not save the webhook position: %s", e)

    # -- following the log ---------------------------------------------------------------

    def follow(self, batches: int = FOLLOW_BATCHES) -> bool:
        """Apply what the log gained; True if there may be more to read."""
        for _ in range(batches):
            rows = self.store.rows_after(min(self.state_seq, self.job_seq))
            scheduled = False
            for row in rows:
                seq, type_ = row[0], row[3]
                if type_ in WEBHOOK_TYPES:
                    if seq > self.state_seq:
                        self._apply(row)
                        self.state_seq = seq
                elif seq > self.job_seq:
                    if type_ in _TERMINAL_JOB_TYPES and self.webhooks:
                        scheduled |= self._notify(row)
                    self.job_seq = seq
            if rows:
                self.state_seq = max(self.state_seq, rows[-1][0])
                self.job_seq = max(self.job_seq, rows[-1][0])
            if len(rows) < BATCH and not scheduled:  # else read what we just appended
                self.save_position()
                return False
        self.save_position()
        return True

    def _apply(self, row: Row) -> None:
        seq, stream_id, version, _, _, at = row
        event = decode_row(row)
        if stream_id.startswith("wh_"):
            hook = fold_webhook(self.webhooks.get(stream_id), stream_id, seq, version, at, event)
            if hook is None:
                self.webhooks.pop(stream_id, None)
            else:
                self.webhooks[stream_id] = hook
            return
        delivery = fold_delivery(self.pending.get(stream_id), stream_id, version, at, event)
        if delivery is None:
            self.pending.pop(stream_id, None)
            self.unrecorded.pop(stream_id, None)
            return
        self.pending[stream_id] = delivery
        if delivery.claimed_by is None:
            heapq.heappush(self.due, (delivery.due, stream_id))

    def _notify(self, row: Row) -> bool:
        """Schedule the deliveries a finished job owes to its tenant's webhooks; True if any."""
        seq, job_id, _, _, _, at = row
        name = notification_of(decode_row(row))
        hooks = [h for h in self.webhooks.values() if h.seq < seq and name in h.events]
        if name is None or not hooks:
            return False
        scheduled = False
        job = self.store.job_at(job_id, seq)
        for hook in hooks:
            if hook.tenant != job["tenant"]:
                continue
            did = delivery_id(hook.webhook_id, job_id, name)
            if did in self.pending or self.store.stream_exists(did):
                continue  # scheduled already, by this process or another
            document = to_view(job).to_document()
            body = orjson.dumps({"id": did, "type": name, "created_at": at, "job": document})
            event = DeliveryScheduled(
                tenant=hook.tenant,
                webhook_id=hook.webhook_id,
                job_id=job_id,
                event_type=name,
                body=body.decode(),
            )
            with contextlib.suppress(ConcurrencyError):  # another process scheduled it first
                self.store.append(did, 0, event)
                scheduled = True
        return scheduled

    # -- claiming and recording ----------------------------------------------------------

    def step(
        self, free: int, busy: frozenset[str] = frozenset()
    ) -> tuple[list[Claimed], float | None]:
        """Follow the log, settle what needs settling, and claim up to `free` due deliveries.

        `busy` are the deliveries this process is sending now. Returns the claims and when the
        next delivery falls due (epoch seconds), if any.
        """
        more = self.follow()
        self._retry_unrecorded()
        self._recover_abandoned(busy)
        claimed: list[Claimed] = []
        now = time.time()
        while self.due and len(claimed) < free and self.due[0][0] <= now:
            due, did = heapq.heappop(self.due)
            delivery = self.pending.get(did)
            if delivery is None or delivery.due != due or delivery.claimed_by is not None:
                continue  # stale heap entry
            hook = self.webhooks.get(delivery.webhook_id)
            try:
                if hook is None:
                    self._append(did, delivery.version, self._gave_up(delivery, "webhook deleted"))
                    continue
                attempt = DeliveryAttempted(attempt=delivery.attempts + 1, owner=self.owner_id)
                if self._append(did, delivery.version, attempt):
                    claimed.append(Claimed(self.pending[did], hook.url, hook.secret))
            except SilverExportError:
                # Not recorded (the log out of reach): still due, so the next step, once the
                # log answers, claims it; dropped from the heap it would never be sent.
                heapq.heappush(self.due, (due, did))
                raise
        next_due = 0.0 if more else self._next_due()
        return claimed, next_due

    def _next_due(self) -> float | None:
        while self.due:
            due, did = self.due[0]
            delivery = self.pending.get(did)
            if delivery is not None and delivery.due == due and delivery.claimed_by is None:
                return due
            heapq.heappop(self.due)
        return None

    def record(self, did: str, outcome: Outcome) -> None:
        """Append the outcome of this process's attempt (kept for a retry if that fails)."""
        delivery = self.pending.get(did)
        if delivery is None or delivery.claimed_by != self.owner_id:
            return  # settled elsewhere meanwhile (taken for abandoned: its outcome stands)
        attempt = delivery.attempts
        if outcome.ok:
            event: Event = DeliverySucceeded(attempt=attempt, status=outcome.status or 0)
            label = "succeeded"
        elif attempt >= self.settings.webhook_max_attempts:
            event = self._gave_up(delivery, outcome.error or "failed", outcome)
            label = "gave_up"
        else:
            delay = self.settings.webhook_retry_seconds * 2 ** (attempt - 1)
            event = DeliveryFailed(
                attempt=attempt,
                error=outcome.error or f"answered {outcome.status}",
                status=outcome.status,
                refused=outcome.refused,
                delay_seconds=delay,
                next_attempt_at=format_time(datetime.now(UTC) + timedelta(seconds=delay)),
            )
            label = "refused" if outcome.refused else "failed"
        try:
            self._append(did, delivery.version, event)
        except SilverExportError:
            log.exception("delivery %s: could not record its outcome; will retry", did)
            self.unrecorded[did] = outcome
            return
        self.unrecorded.pop(did, None)
        self.on_outcome(label)

    def _gave_up(self, delivery: Delivery, error: str, outcome: Outcome | None = None) -> Event:
        return DeliveryGaveUp(
            attempt=delivery.attempts,
            error=error,
            status=outcome.status if outcome else None,
            refused=outcome.refused if outcome else False,
        )

    def _retry_unrecorded(self) -> None:
        for did, outcome in list(self.unrecorded.items()):
            self.record(did, outcome)

    def _recover_abandoned(self, busy: frozenset[str]) -> None:
        """An attempt whose process died before its outcome counts as failed, and is due at
        once; so is one of ours that nothing here is sending any more."""
        alive: dict[str, bool] = {}
        for did, delivery in list(self.pending.items()):
            owner = delivery.claimed_by
            if owner is None or did in busy or did in self.unrecorded:
                continue
            if owner != self.owner_id:
                if owner not in alive:
                    alive[owner] = self.is_alive(owner)
                if alive[owner]:
                    continue
            self._interrupted(delivery)

    def abandon(self, did: str) -> None:
        """This process stops before the outcome: hand the attempt back, due at once."""
        delivery = self.pending.get(did)
        if delivery is not None and delivery.claimed_by == self.owner_id:
            self._interrupted(delivery)

    def _interrupted(self, delivery: Delivery) -> None:
        error = f"interrupted: the process making attempt {delivery.attempts} stopped"
        if delivery.attempts >= self.settings.webhook_max_attempts:
            event = self._gave_up(delivery, error)
        else:
            event = DeliveryFailed(
                attempt=delivery.attempts,
                error=error,
                status=None,
                refused=False,
                delay_seconds=0.0,
                next_attempt_at=format_time(datetime.now(UTC)),
            )
        self._append(delivery.delivery_id, delivery.version, event)

    def _append(self, did: str, version: int, event: Event) -> bool:
        """Append to a delivery's stream at `version`; False if another process got there."""
        try:
            self.store.append(did, version, event)
        except ConcurrencyError:
            return False
        finally:
            self.follow()
        return True
