"""WebhookService: register, list and delete a tenant's webhooks; run the deliveries.

Registrations are streams in the log like everything else, so every node sees them and a
restart replays them. All of the service's database work happens on one thread with its own
connection; the HTTP handlers and the dispatcher hand their calls to it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import Settings
from ..errors import ConflictError, NotFoundError, ValidationError
from ..events.types import WebhookDeleted, WebhookRegistered
from .ledger import DeliveryLedger
from .signing import new_secret
from .state import EVENT_NAMES, WEBHOOK_PREFIX, Webhook, fold_webhook
from .store import WEBHOOK_TYPES, WebhookLog, decode_row
from .targets import Resolver, SystemResolver, TargetPolicy, parse_url

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

T = TypeVar("T")
MAX_WEBHOOKS_PER_TENANT = 20
CALL_TIMEOUT = 60.0


def check_events(value: object) -> list[str]:
    """The `events` of a registration: a non-empty list of distinct known names."""
    if value is None:
        return list(EVENT_NAMES)
    valid = ", ".join(EVENT_NAMES)
    if not isinstance(value, list) or not value:
        raise ValidationError(f'"events" must be a non-empty list of: {valid}', field="events")
    for name in value:
        if name not in EVENT_NAMES:
            raise ValidationError(
                f'"events" holds {name!r}, which is not one of: {valid}', field="events"
            )
    if len(set(value)) != len(value):
        raise ValidationError('"events" names an event more than once', field="events")
    return list(value)


class WebhookService:
    def __init__(
        self,
        settings: Settings,
        *,
        owner_id: str,
        is_alive: Callable[[str], bool],
        resolver: Resolver | None = None,
        on_outcome: Callable[[str], None] | None = None,
    ):
        self.settings = settings
        self.policy = TargetPolicy(settings.webhook_allow_hosts)  # a bad setting fails here
        self.resolver: Resolver = resolver or SystemResolver()
        self.owner_id = owner_id
        self.is_alive = is_alive
        self.on_outcome = on_outcome or (lambda outcome: None)
        self._db = ThreadPoolExecutor(1, "silverexport-webhooks-db")
        self._local = threading.local()
        self._stores: list[WebhookLog] = []
        self.dispatcher: Dispatcher | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering (serving processes do; bookkeeping ones only register and list)."""
        if self.dispatcher is not None:
            return
        from .dispatcher import Dispatcher  # aiohttp's client: only processes that deliver

        self.dispatcher = Dispatcher(
            self.settings, self._new_ledger, self._db, policy=self.policy, resolver=self.resolver
        )
        self.dispatcher.start()

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self._db.submit(self._close_store).result(CALL_TIMEOUT)
        self._db.shutdown(wait=True)

    def _store(self) -> WebhookLog:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = WebhookLog(self.settings)
            self._stores.append(store)
        return store

    def _close_store(self) -> None:
        for store in self._stores:
            store.close()
        self._stores.clear()

    def _new_ledger(self) -> DeliveryLedger:
        return DeliveryLedger(
            self.settings,
            self._store(),
            owner_id=self.owner_id,
            is_alive=self.is_alive,
            on_outcome=self.on_outcome,
        )

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._db.submit(fn, *args).result(CALL_TIMEOUT)

    # -- the API -------------------------------------------------------------------------

    async def check_target(self, url: object) -> str:
        """The URL, once its form and what its host resolves to pass (TargetRefused if not).
        Awaited on the caller's loop: resolving never blocks it."""
        parsed = parse_url(url)
        await self.policy.check(parsed, self.resolver)
        return str(url)

    def register(self, tenant: str, url: str, events: object = None) -> Webhook:
        """Record a webhook whose URL `check_target` has passed; its secret is in the result."""
        names = check_events(events)
        parse_url(url)
        return self._call(self._register, tenant, url, names)

    def _register(self, tenant: str, url: str, events: list[str]) -> Webhook:
        if len(self._webhooks(tenant)) >= MAX_WEBHOOKS_PER_TENANT:
            raise ConflictError(
                f"a tenant may have at most {MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first"
            )
        webhook_id = WEBHOOK_PREFIX + uuid.uuid4().hex
        event = WebhookRegistered(tenant=tenant, url=url, events=events, secret=new_secret())
        (rec,) = self._store().append(webhook_id, 0, event)
        if self.dispatcher is not None:
            self.dispatcher.nudge()
        hook = fold_webhook(None, webhook_id, rec.seq, rec.version, rec.recorded_at, event)
        assert hook is not None
        return hook

    def list(self, tenant: str) -> list[Webhook]:
        """The tenant's webhooks, oldest first, read from the log itself (any node's)."""
        return self._call(self._webhooks, tenant)

    def _webhooks(self, tenant: str) -> list[Webhook]:
        store = self._store()
        hooks: dict[str, Webhook] = {}
        for row in store.webhook_rows(store.last_seq()):
            seq, stream_id, version, type_, _, at = row
            if not stream_id.startswith(WEBHOOK_PREFIX) or type_ not in WEBHOOK_TYPES:
                continue
            hook = fold_webhook(hooks.get(stream_id), stream_id, seq, version, at, decode_row(row))
            if hook is None:
                hooks.pop(stream_id, None)
            else:
                hooks[stream_id] = hook
        return [h for h in hooks.values() if h.tenant == tenant]

    def delete(self, tenant: str, webhook_id: str) -> None:
        """Delete the tenant's webhook; its pending deliveries are given up. NotFoundError if
        there is none (or it is another tenant's)."""
        self._call(self._delete, tenant, webhook_id)

    def _delete(self, tenant: str, webhook_id: str) -> None:
        store = self._store()
        hook = None
        for rec in store.stream(webhook_id):
            hook = fold_webhook(hook, webhook_id, rec.seq, rec.version, rec.recorded_at, rec.event)
        if hook is None or hook.tenant != tenant:
            raise NotFoundError(f"no webhook {webhook_id}")
        store.append(webhook_id, hook.version, WebhookDeleted())
