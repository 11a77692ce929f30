"""Every status a route answers is in the OpenAPI document, whichever route it is.

The routes are taken from the app's router (so routes added later are probed too), each is
sent every method and a battery of requests a client may send (no key, a wrong key, no body,
a body that is not JSON, an unknown query parameter, an oversized header or request line, a
body over the limit), through the runner `serve` uses, and every answer's status must be one
the document lists for that operation. Statuses that need a job in a given state are checked
against the document by test_http_openapi.py's conformance test.
"""

from __future__ import annotations

import re

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from silverexport.http import make_app
from silverexport.http.openapi import openapi_document
from silverexport.http.server import AppRunner

from .conftest import ALICE, WALLET

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Before a route is even chosen, any path may get these for a method it does not document.
UNROUTED = {400, 401, 405, 431}
SAMPLES = {"job_id": ("0" * 32, "not-a-job-id"), "wallet": (WALLET, "0x12")}
DEFAULT_SAMPLES = ("0" * 32, "x")


def sample_paths(resource: web.AbstractResource) -> list[str]:
    """Concrete paths for a resource: each template parameter given a valid-looking and an
    invalid value; a static prefix, itself and something under it."""
    info = resource.get_info()
    if "path" in info:
        return [info["path"]]
    if "prefix" in info:
        return [info["prefix"] + "/", info["prefix"] + "/no-such-file"]
    formatter = info["formatter"]
    names = re.findall(r"{(\w+)}", formatter)
    paths = []
    for i in range(2):
        values = {n: SAMPLES.get(n, DEFAULT_SAMPLES)[i] for n in names}
        paths.append(formatter.format(**values))
    return paths


def probes(path: str) -> list[dict]:
    """Keyword arguments of ClientSession.request: what clients send, well and badly."""
    json_type = {**ALICE, "Content-Type": "application/json"}
    return [
        {"url": path},
        {"url": path, "headers": {"Authorization": "Bearer wrong"}},
        {"url": path, "headers": ALICE},
        {"url": path, "headers": ALICE, "json": {}},
        {"url": path, "headers": json_type, "data": "{"},
        {"url": path + "?zz=1", "headers": ALICE},
        {"url": path, "headers": {**ALICE, "Idempotency-Key": "k" * 10_000}},
        {"url": path + "?q=" + "q" * 20_000, "headers": ALICE},
        {"url": path, "headers": json_type, "data": "1" * 70_000},
    ]  # fmt: skip


async def template_of(app: web.Application, method: str, path: str) -> str | None:
    match = await app.router.resolve(make_mocked_request(method, path, app=app))
    route = match.route
    return None if route is None or match.http_exception else route.resource.canonical


@pytest.fixture
async def base_url(system):
    app = make_app(system)
    runner = AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield app, f"http://{host}:{port}"
    await runner.cleanup()


async def test_every_status_any_route_answers_is_documented(base_url, system):
    app, base = base_url
    document = openapi_document(system.settings)["paths"]
    seen, undocumented = set(), []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base, timeout=timeout) as session:
        for resource in app.router.resources():
            documented_path = document.get(resource.canonical)
            for path in sample_paths(resource):
                for method in METHODS:
                    template = await template_of(app, method, path) or resource.canonical
                    for probe in probes(path):
                        async with session.request(method, allow_redirects=False, **probe) as resp:
                            status = resp.status
                        seen.add((method, template, status))
                        operation = (document.get(template) or {}).get(method.lower())
                        if documented_path is None:
                            continue  # test_every_route_is_documented... owns that failure
                        if operation is None:
                            ok = status in UNROUTED
                        else:
                            responses = operation["responses"]
                            ok = str(status) in responses or "default" in responses
                        if not ok:
                            undocumented.append((method, template, status, probe["url"][:80]))
    assert undocumented == []
    # The battery reached what it is meant to: the refusals, and the 405 of SPEC §5.
    assert ("GET", "/v1/export/dataset", 405) in seen
    assert {s for _, _, s in seen} >= {200, 400, 401, 404, 405, 413, 431}
