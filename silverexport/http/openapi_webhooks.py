"""The webhook routes' part of the OpenAPI document (SPEC §9), kept beside the others'."""

from __future__ import annotations

from typing import Any

from ..webhooks import EVENT_NAMES
from ..webhooks.service import MAX_WEBHOOKS_PER_TENANT
from ..webhooks.targets import MAX_URL_LENGTH
from .openapi_blocks import TIME, json_response, nullable, ref
from .openapi_statuses import error_responses

WEBHOOK_ID = {"type": "string", "pattern": "^wh_[0-9a-f]{32}$"}
_URL = {"type": "string", "minLength": 1, "maxLength": MAX_URL_LENGTH, "pattern": "^https?://"}
_EVENTS = {
    "type": "array",
    "items": {"type": "string", "enum": list(EVENT_NAMES)},
    "minItems": 1,
    "maxItems": len(EVENT_NAMES),
    "uniqueItems": True,
}
_FIELDS = {"webhook_id": WEBHOOK_ID, "url": _URL, "events": _EVENTS, "created_at": TIME}
_SECRET = {
    "type": "string",
    "pattern": "^whsec_",
    "description": "Shown only here: the HMAC-SHA256 key of the "
    "Silverexport-Signature header of every delivery",
}
# SPEC §9's order: the secret before created_at.
_CREATED_FIELDS = {
    "webhook_id": WEBHOOK_ID,
    "url": _URL,
    "events": _EVENTS,
    "secret": _SECRET,
    "created_at": TIME,
}


def webhook_schemas() -> dict[str, Any]:
    return {
        "WebhookRequest": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {"url": _URL, "events": nullable(_EVENTS)},
            "description": "`events` defaults to all of them. The URL's host must not be, nor "
            "resolve to, a loopback, private, link-local, multicast, reserved or metadata "
            "address unless SILVEREXPORT_WEBHOOK_ALLOW_HOSTS allows it.",
        },
        "Webhook": {
            "type": "object",
            "required": list(_FIELDS),
            "additionalProperties": False,
            "properties": _FIELDS,
        },
        "WebhookCreated": {
            "type": "object",
            "required": list(_CREATED_FIELDS),
            "additionalProperties": False,
            "properties": _CREATED_FIELDS,
        },
        "WebhookList": {
            "type": "object",
            "required": ["webhooks"],
            "additionalProperties": False,
            "properties": {
                "webhooks": {
                    "type": "array",
                    "items": ref("Webhook"),
                    "maxItems": MAX_WEBHOOKS_PER_TENANT,
                }
            },
        },
    }


def webhook_paths() -> dict[str, Any]:
    unknown = error_responses(404)["404"] | {"description": "Unknown webhook (or another tenant's)"}
    too_many = error_responses(409)["409"] | {
        "description": f"The tenant already has {MAX_WEBHOOKS_PER_TENANT} webhooks"
    }
    return {
        "/v1/webhooks": {
            "post": {
                "operationId": "createWebhook",
                "summary": "Register an endpoint told when the tenant's jobs finish",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("WebhookRequest")}},
                },
                "responses": {
                    "201": json_response(
                        "The webhook, with its secret (shown only now)", ref("WebhookCreated")
                    ),
                    **error_responses(400, 401, 413, 503),
                    "409": too_many,
                },
            },
            "get": {
                "operationId": "listWebhooks",
                "summary": "The tenant's webhooks (without secrets)",
                "responses": {
                    "200": json_response("The webhooks, oldest first", ref("WebhookList")),
                    **error_responses(400, 401, 503),
                },
            },
        },
        "/v1/webhooks/{webhook_id}": {
            "parameters": [
                {"name": "webhook_id", "in": "path", "required": True, "schema": WEBHOOK_ID}
            ],
            "delete": {
                "operationId": "deleteWebhook",
                "summary": "Delete a webhook; deliveries still pending for it are given up",
                "responses": {
                    "204": {"description": "Deleted"},
                    **error_responses(401, 503),
                    "404": unknown,
                },
            },
        },
    }
