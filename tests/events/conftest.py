"""An event log per test, on each backend: a fresh SQLite file, and a fresh PostgreSQL database.

`backend` is parametrised, so every test that takes `log` runs on both adapters (the contract
suite). A module whose subject exists on one backend only narrows `backend` itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from silverexport.events.log import EventLog

from .backends import PostgresBackend, SqliteBackend


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return SqliteBackend(tmp_path)
    return PostgresBackend(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_backend(tmp_path) -> SqliteBackend:
    return SqliteBackend(tmp_path)


@pytest.fixture
def log(backend) -> Iterator[EventLog]:
    """A new log with the job views as its projector (where the backend has them)."""
    log = backend.with_views(backend.open())
    yield log
    log.close()


@pytest.fixture
def views(log):
    return log.projector
