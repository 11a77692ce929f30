"""Fixtures every test shares: fresh data dirs, no actor outliving its test, and none of the
caller's SILVEREXPORT_* settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from silverexport import ExportSystem
from tests.s3_server import s3_bucket, s3_server, use_keys  # noqa: F401 (SeaweedFS fixtures)

# The suite's own size knobs (see tests/reliability): read by tests, never by the project.
SUITE_KNOBS = frozenset(
    f"SILVEREXPORT_{name}"
    for name in (
        "SOAK",
        "CRASH_ROUNDS",
        "CRASH_NODE_ROUNDS",
        "CRASH_SEED",
        "CONCURRENT_SECONDS",
        "LOAD_JOBS",
    )
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


@pytest.fixture(autouse=True)
def _event_log_on_postgres(request, monkeypatch):
    """With EVENT_LOG_BACKEND=postgres, every test's system keeps its log (and views) in a
    fresh PostgreSQL database: the same suites, run against the second backend. A test
    about the SQLite file itself (marked `sqlite_log`) keeps it."""
    sqlite_only = request.node.get_closest_marker("sqlite_log") is not None
    if os.environ.get("EVENT_LOG_BACKEND") == "postgres" and not sqlite_only:
        monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", request.getfixturevalue("postgres_url"))


@pytest.fixture(autouse=True)
def _files_on_s3(request, monkeypatch):
    """With STORAGE_BACKEND=s3, every test's system keeps its export files under a fresh prefix
    of one bucket of the session's SeaweedFS: the same suites, run against the second store. A
    test about the export directory itself (marked `file_storage`) keeps the directory.

    One bucket, not one per test: each SeaweedFS bucket takes volumes of its own, and a few
    hundred of them exhaust the server's volume slots (PutObject then fails, InternalError)."""
    local_only = request.node.get_closest_marker("file_storage") is not None
    if os.environ.get("STORAGE_BACKEND") == "s3" and not local_only:
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("_suite_bucket")
        use_keys(server, monkeypatch)
        monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", f"s3://{bucket}/{uuid.uuid4().hex}/")
        monkeypatch.setenv("SILVEREXPORT_S3_ENDPOINT_URL", server.endpoint_url)


@pytest.fixture(scope="session")
def _suite_bucket(request) -> Iterator[str]:
    """The bucket STORAGE_BACKEND=s3 puts every test's files in, each under its own prefix."""
    server = request.getfixturevalue("s3_server")
    name = server.new_bucket()
    yield name
    server.drop_bucket(name)


@pytest.fixture(autouse=True)
def _silver_on_postgres(request, monkeypatch):
    """With SILVER_BACKEND=postgres, every test's system keeps its Silver store in a fresh
    PostgreSQL database (the one the log uses too, when both are on PostgreSQL: the tables do
    not overlap). A test about the SQLite Silver file itself (marked `sqlite_silver`) keeps it."""
    sqlite_only = request.node.get_closest_marker("sqlite_silver") is not None
    if os.environ.get("SILVER_BACKEND") == "postgres" and not sqlite_only:
        monkeypatch.setenv("SILVEREXPORT_SILVER_URL", request.getfixturevalue("postgres_url"))


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


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL 15 server for the session, started on first use."""
    from tests import postgres_server as pg
    from tests.parts import need

    need(pg.available(), "PostgreSQL 15", "postgresql-15 (apt-get install -y postgresql-15)")
    server = pg.PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped after the test."""
    name = postgres_server.fresh_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own, to stop and start again (`halt`, `resume`)
    without touching the session's server that other tests use."""
    from tests import postgres_server as pg
    from tests.parts import need

    need(pg.available(), "PostgreSQL 15", "postgresql-15 (apt-get install -y postgresql-15)")
    server = pg.PostgresServer().start()
    yield server
    server.stop()
