"""Handlers of the webhook routes (SPEC §9): register, list, delete."""

from __future__ import annotations

import re

from aiohttp import web

from ..errors import NotFoundError, ValidationError
from .auth import TENANT
from .bridge import run_blocking
from .common import SYSTEM, json_response
from .jobs import _json_body

BODY_KEYS = ("url", "events")
_WEBHOOK_ID = re.compile(r"wh_[0-9a-f]{32}")


async def create_webhook(request: web.Request) -> web.Response:
    system = request.app[SYSTEM]
    body = await _json_body(request, system.settings.max_body_bytes)
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise ValidationError(
            f"unknown field {unknown[0]!r}; allowed: {', '.join(BODY_KEYS)}", field=unknown[0]
        )
    if "url" not in body:
        raise ValidationError('"url" is required', field="url")
    service = system.webhooks
    url = await service.check_target(body["url"])  # resolves on this loop, without blocking it
    hook = await run_blocking(request, service.register, request[TENANT], url, body.get("events"))
    return json_response(hook.to_document(with_secret=True), status=201)


async def list_webhooks(request: web.Request) -> web.Response:
    if request.query:
        name = next(iter(request.query))
        raise ValidationError(f"unknown query parameter {name!r}", field=name)
    service = request.app[SYSTEM].webhooks
    hooks = await run_blocking(request, service.list, request[TENANT])
    return json_response({"webhooks": [h.to_document() for h in hooks]})


async def delete_webhook(request: web.Request) -> web.Response:
    webhook_id = request.match_info["webhook_id"]
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise NotFoundError("no such webhook: a webhook id is wh_ and 32 hexadecimal digits")
    service = request.app[SYSTEM].webhooks
    await run_blocking(request, service.delete, request[TENANT], webhook_id)
    return web.Response(status=204)
