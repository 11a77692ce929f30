"""GET /ui/: the dashboard (SPEC §10), plain files shipped in the package, nothing from outside.

The page is a client of the public API and nothing more: it calls the same routes with the key
the user types, so it needs no session, no cookie and no route of its own beyond its files.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import hdrs, web

from ..errors import NotFoundError

INDEX = "index.html"
ASSET_TYPES = {
    INDEX: "text/html; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
# The browser itself refuses anything from another origin, whatever the page tried.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    hdrs.CACHE_CONTROL: "no-cache",
}
ASSETS = web.AppKey("dashboard_assets", dict)


def load_assets() -> dict[str, bytes]:
    """Read once, when the app is built: the files are a few kilobytes."""
    folder = resources.files(__package__) / "ui"
    return {name: (folder / name).read_bytes() for name in ASSET_TYPES}


async def dashboard_redirect(request: web.Request) -> web.Response:
    """`/ui` is where people type; the page's relative links need the slash."""
    return web.Response(status=308, headers={hdrs.LOCATION: "/ui/"})


async def dashboard_index(request: web.Request) -> web.Response:
    return _asset(request, INDEX)


async def dashboard_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name not in ASSET_TYPES:
        raise NotFoundError(f"the dashboard has no file {name[:60]!r}")
    return _asset(request, name)


def _asset(request: web.Request, name: str) -> web.Response:
    headers = {hdrs.CONTENT_TYPE: ASSET_TYPES[name], **SECURITY_HEADERS}
    return web.Response(body=request.app[ASSETS][name], headers=headers)
