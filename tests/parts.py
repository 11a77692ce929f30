"""Outside parts the tests start for real (PostgreSQL, SeaweedFS, Chromium).

Where a part cannot be had, only the tests that need it skip, with one line saying what to
install. Under CI (`CI` set, as `.ci/run` runs) a missing part is a failure: those suites
must run there.
"""

from __future__ import annotations

import os

import pytest


def need(available: bool, what: str, install: str) -> None:
    """Skip (or, under CI, fail) the calling test unless `available`."""
    if available:
        return
    message = f"{what} is not available here: install {install}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run this suite, not skip it)", pytrace=False)
    pytest.skip(message)
