"""Fixtures every test shares: fresh data dirs, no actor outliving its test, and none of the
caller's SILVEREXPORT_* settings."""

from __future__ import annotations

import os
from pathlib import Path

import pykka
import pytest

from silverexport import ExportSystem

# The suite's own size knobs (see tests/reliability): read by tests, never by the project.
SUITE_KNOBS = frozenset(
    f"SILVEREXPORT_{name}"
    for name in ("SOAK", "CRASH_ROUNDS", "CRASH_SEED", "CONCURRENT_SECONDS", "LOAD_JOBS")
)


def project_settings_in(environ) -> list[str]:
    """The SILVEREXPORT_* names in `environ` the project could read as settings."""
    return [k for k in environ if k.startswith("SILVEREXPORT_") and k not in SUITE_KNOBS]


@pytest.fixture(scope="session", autouse=True)
def _no_settings_from_the_caller():
    """`SILVEREXPORT_MAX_RECORDS=3 make test` must run the same suite: settings come only from
    what a test sets (monkeypatch.setenv, a child's env). Session-wide, so module fixtures that
    start servers see none either; child processes inherit this cleaned environment."""
    with pytest.MonkeyPatch.context() as mp:
        for name in project_settings_in(os.environ):
            mp.delenv(name)
        yield


@pytest.fixture(autouse=True)
def _stop_all_actors():
    """A failing test must not leave actor threads behind to hang the suite."""
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


@pytest.fixture
def open_system(tmp_path: Path):
    """Opens systems (on tmp_path/data unless told) that poll fast, and closes them after."""
    opened: list[ExportSystem] = []

    def _open(data_dir: Path | None = None, **kwargs) -> ExportSystem:
        kwargs.setdefault("catch_up_interval_seconds", 0.05)
        kwargs.setdefault("progress_interval_seconds", 0.0)
        system = ExportSystem.open(data_dir or tmp_path / "data", **kwargs)
        opened.append(system)
        return system

    yield _open
    for system in opened:
        system.close()
