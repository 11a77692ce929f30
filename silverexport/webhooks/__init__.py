"""Webhooks (SPEC §9): registrations and deliveries as streams of the event log, signed
Stripe-style, retried with backoff, made by exactly one process, never to private networks."""

from .service import WebhookService
from .signing import signature_header, verify
from .state import EVENT_NAMES, OUTCOMES, Webhook
from .targets import Resolver, SystemResolver, TargetPolicy, TargetRefused

__all__ = [
    "EVENT_NAMES",
    "OUTCOMES",
    "Resolver",
    "SystemResolver",
    "TargetPolicy",
    "TargetRefused",
    "Webhook",
    "WebhookService",
    "signature_header",
    "verify",
]
