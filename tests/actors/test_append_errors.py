"""A constraint failing inside an append is our bug, not contention (issue 10 item 12)."""

from __future__ import annotations

import logging

import pytest

from silverexport import ExportRequest
from silverexport.errors import ConcurrencyError, InternalError
from silverexport.events.sqlite_log import SqliteEventLog
from silverexport.http import make_app

from ..events.lifecycles import requested

ALICE = {"Authorization": "Bearer k1"}
REFUSE_JOBS = (
    "CREATE TRIGGER jobs_refuse BEFORE INSERT ON jobs "
    "BEGIN SELECT RAISE(ABORT, 'projector refused this row'); END"
)


class NotNullProjector:
    """A projector with a bug: it writes NULL into a NOT NULL column."""

    def __init__(self, db):
        db.execute("CREATE TABLE IF NOT EXISTS broken (x TEXT NOT NULL)")
        self.calls = 0

    def project(self, db, recorded):
        self.calls += 1
        db.execute("INSERT INTO broken (x) VALUES (NULL)")


@pytest.mark.sqlite_log  # raw SQL on the SQLite log file
def test_a_projector_constraint_failure_is_internal_not_a_conflict(tmp_path):
    log = SqliteEventLog(tmp_path / "events.db")
    log.projector = NotNullProjector(log.db)
    try:
        with pytest.raises(InternalError, match="NOT NULL constraint failed") as caught:
            log.append("j1", 0, requested(1))
        assert not isinstance(caught.value, ConcurrencyError)
        assert log.count() == 0  # all or nothing
    finally:
        log.close()


@pytest.mark.sqlite_log  # raw SQL on the SQLite log file
def test_a_version_collision_is_still_a_conflict(tmp_path):
    a, b = SqliteEventLog(tmp_path / "events.db"), SqliteEventLog(tmp_path / "events.db")
    try:
        a.append("j1", 0, requested(1))
        with pytest.raises(ConcurrencyError):
            b.append("j1", 0, requested(2))
    finally:
        a.close()
        b.close()


@pytest.mark.sqlite_log  # raw SQL on the SQLite log file
def test_submit_is_not_retried_when_the_views_refuse(open_system):
    system = open_system()
    system.log.db.execute(REFUSE_JOBS)
    with pytest.raises(InternalError, match="projector refused"):
        system.submit(ExportRequest(dataset="token_transfers", format="csv"))
    assert system.log.count() == 0


@pytest.mark.sqlite_log  # raw SQL on the SQLite log file
async def test_http_answers_500_once_with_a_generic_message(open_system, aiohttp_client, caplog):
    system = open_system(api_keys="alice:k1")
    system.log.db.execute(REFUSE_JOBS)
    client = await aiohttp_client(make_app(system))
    with caplog.at_level(logging.ERROR):
        resp = await client.post(
            "/v1/export/dataset",
            json={"dataset": "token_transfers", "format": "csv"},
            headers=ALICE,
        )
    assert resp.status == 500, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "internal_error"
    assert "projector" not in error["message"] and "Traceback" not in error["message"]
    assert "projector refused this row" in caplog.text and "Traceback" in caplog.text
    assert system.log.count() == 0
