"""The aiohttp front end: translates HTTP to ExportSystem calls and back, nothing more."""

from .app import make_app

__all__ = ["make_app"]
