"""Fixtures every test shares: fresh data dirs, and no actor outliving its test."""

from __future__ import annotations

import pykka
import pytest


@pytest.fixture(autouse=True)
def _stop_all_actors():
    """A failing test must not leave actor threads behind to hang the suite."""
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)
