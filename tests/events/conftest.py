"""An event log with its views in a fresh file per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from silverexport.events.log import EventLog
from silverexport.events.views import ViewTables


@pytest.fixture
def log(tmp_path) -> Iterator[EventLog]:
    log = EventLog(tmp_path / "events.db")
    log.projector = ViewTables(log.db)
    yield log
    log.close()


@pytest.fixture
def views(log) -> ViewTables:
    return log.projector
