"""make_app(system): the aiohttp application of SPEC §5. Nothing is built at import time."""

from __future__ import annotations

import orjson
from aiohttp import web

from ..system import ExportSystem
from . import dashboard, jobs, webhooks
from .auth import ApiKeys
from .bridge import EXECUTORS, Executors, executors_ctx
from .common import JSON, SYSTEM
from .documents import DOCUMENTS, EncodedDocuments
from .health import health_ctx, healthz
from .metrics import metrics_page
from .middleware import front_middleware
from .openapi import openapi_document
from .stream import stream_hub_ctx, stream_job
from .wallet import wallet_export

OPENAPI_JSON = web.AppKey("openapi_json", bytes)


def make_app(system: ExportSystem) -> web.Application:
    """The HTTP front end of a running system; the caller opens and closes the system."""
    settings = system.settings
    metrics_on = settings.metrics == "on"
    keys = ApiKeys.parse(settings.api_keys)
    app = web.Application(
        middlewares=[front_middleware(keys, system.metrics if metrics_on else None)],
        client_max_size=settings.max_body_bytes,
    )
    app[SYSTEM] = system
    app[EXECUTORS] = Executors()
    app[DOCUMENTS] = EncodedDocuments()
    app[OPENAPI_JSON] = orjson.dumps(openapi_document(settings))
    app[dashboard.ASSETS] = dashboard.load_assets()
    app.cleanup_ctx.append(executors_ctx)
    app.cleanup_ctx.append(stream_hub_ctx)  # after the executors it reads the log in
    app.cleanup_ctx.append(health_ctx)
    _add_routes(app.router)
    if metrics_on:
        app.router.add_get("/metrics", metrics_page)
    return app


def _add_routes(router: web.UrlDispatcher) -> None:
    # Fixed paths are resolved before the templated legacy route `/v1/export/{wallet}`,
    # and /v1/export/dataset answers every other method itself (405, Allow: POST).
    router.add_get("/healthz", healthz)
    router.add_get("/v1/openapi.json", openapi)
    dataset = router.add_resource("/v1/export/dataset")
    dataset.add_route("POST", jobs.create_job)
    dataset.add_route("*", jobs.dataset_not_a_wallet)
    # A job's status is the route polled most: it is tried first among those on its prefix.
    router.add_get("/v1/export/jobs/{job_id}", jobs.get_job)
    router.add_get("/v1/export/jobs", jobs.list_jobs)
    router.add_delete("/v1/export/jobs/{job_id}", jobs.cancel_job)
    router.add_get("/v1/export/jobs/{job_id}/download", jobs.download)
    router.add_get("/v1/export/jobs/{job_id}/events", jobs.job_events)
    router.add_get("/v1/export/jobs/{job_id}/stream", stream_job)
    router.add_get("/v1/export/{wallet}", wallet_export)
    router.add_get("/ui", dashboard.dashboard_redirect)
    router.add_get("/ui/", dashboard.dashboard_index)
    router.add_get("/ui/{asset}", dashboard.dashboard_asset)
    router.add_post("/v1/webhooks", webhooks.create_webhook)
    router.add_get("/v1/webhooks", webhooks.list_webhooks)
    router.add_delete("/v1/webhooks/{webhook_id}", webhooks.delete_webhook)


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_JSON], content_type=JSON)
