"""Browser fixtures: Debian's Chromium driven by Playwright, against the real app on loopback.

Never `playwright install` (it downloads a browser build from outside): the system's
/usr/bin/chromium is launched instead. Every request the page makes is recorded, so a test
can prove none left the server's origin.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from silverexport import ExportSystem
from silverexport.http import make_app
from silverexport.silver.writers import export_to_file
from tests.http.liveserver import LiveServer
from tests.parts import need

CHROMIUM = Path("/usr/bin/chromium")
KEYS = "alice:k1,bob:k2"
ALICE_KEY = "k1"
WAIT_MS = 30_000


class Hold:
    """An export_fn that holds the exports of some datasets until released (others run)."""

    def __init__(self, *datasets: str) -> None:
        self.datasets = set(datasets)
        self.released = threading.Event()
        self.entered = threading.Event()

    def __call__(self, store_path, dataset, *args: Any, should_stop: Callable[[], bool], **kw):
        if dataset in self.datasets:
            self.entered.set()
            while not self.released.wait(0.01):
                if should_stop():
                    break
        return export_to_file(store_path, dataset, *args, should_stop=should_stop, **kw)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API holds an event loop while it runs, which asyncio
    tests elsewhere in the session must not find still running."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        sync_playwright = None
    need(sync_playwright is not None, "Playwright for Python", "the test extra (pip)")
    need(
        CHROMIUM.exists() or shutil.which("chromium") is not None,
        "Chromium",
        "Debian's chromium package (apt-get install chromium)",
    )
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield browser
        browser.close()


@pytest.fixture
def served(tmp_path) -> Iterator[Callable[..., tuple[ExportSystem, str]]]:
    """served(**settings) -> (system, base_url): a system on tmp_path behind a live server."""
    stack: list[tuple[ExportSystem, LiveServer]] = []

    def _serve(**settings: Any) -> tuple[ExportSystem, str]:
        settings.setdefault("api_keys", KEYS)
        settings.setdefault("catch_up_interval_seconds", 0.05)
        settings.setdefault("progress_interval_seconds", 0.0)
        settings.setdefault("stream_poll_seconds", 0.05)
        system = ExportSystem.open(tmp_path / f"data{len(stack)}", **settings)
        server = LiveServer(make_app(system))
        url = server.__enter__()
        stack.append((system, server))
        return system, url

    yield _serve
    for system, server in reversed(stack):
        server.__exit__(None, None, None)
        system.close()


class Page:
    """A browser tab on the dashboard, recording every request it makes."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.requests: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.set_default_timeout(WAIT_MS)

    def open(self) -> Any:
        self.page.goto(f"{self.base_url}/ui/")
        return self.page

    def connect(self, key: str = ALICE_KEY) -> Any:
        page = self.page
        page.fill("input#api-key", key)
        page.click("#connect")
        return page

    def foreign_requests(self) -> list[str]:
        """Requests to anywhere but the server's origin (data: and blob: stay in the page)."""
        origin = self.base_url + "/"
        return [
            url
            for url in self.requests
            if not url.startswith(origin) and not url.startswith(("data:", "blob:"))
        ]


@pytest.fixture
def dashboard(browser) -> Iterator[Callable[[str], Page]]:
    """dashboard(base_url) -> a fresh tab (own context: its own sessionStorage)."""
    contexts = []

    def _open(base_url: str) -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 860})
        contexts.append(context)
        return Page(context.new_page(), base_url)

    yield _open
    for context in contexts:
        context.close()


def artefact_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $SILVEREXPORT_TEST_ARTIFACTS if set, else the test's tmp dir."""
    folder = Path(os.environ.get("SILVEREXPORT_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
