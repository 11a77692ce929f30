"""Node ids in the system, on both log backends: a serving system takes SILVEREXPORT_NODE_ID
and writes it as its jobs' owner; a second live one with that id is refused and leaves nothing
behind; a one-shot system beside it takes an id of its own."""

from __future__ import annotations

import pytest

from silverexport import ExportRequest
from silverexport.nodes import NodeIdInUse, default_node_id
from tests.actors.conftest import WAIT, transfer_rows


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, monkeypatch):
    if request.param == "postgres":
        monkeypatch.setenv("SILVEREXPORT_EVENT_LOG_URL", request.getfixturevalue("postgres_url"))
    return request.param


def test_a_serving_system_is_its_node_id_and_a_twin_is_refused(backend, open_system, tmp_path):
    first = open_system(tmp_path / "a", node_id="node-1")
    first.store.ingest("token_transfers", transfer_rows(5))
    job = first.wait(first.submit(ExportRequest("token_transfers", "csv")).job_id, timeout=WAIT)
    assert first.owner.owner_id == job.owner == "node-1"
    # On PostgreSQL another machine's data dir; on SQLite the same data dir, as they share it.
    twin_dir = tmp_path / ("b" if backend == "postgres" else "a")
    with pytest.raises(NodeIdInUse, match=r"^SILVEREXPORT_NODE_ID: node 'node-1' is already"):
        open_system(twin_dir, node_id="node-1")
    one_shot = open_system(twin_dir, node_id="node-1", run_jobs=False)
    assert one_shot.owner.owner_id != "node-1"
    assert first.status(job.job_id) == one_shot.status(job.job_id)


def test_the_default_id_is_host_and_pid_and_unique_per_system(open_system, tmp_path):
    a = open_system(tmp_path / "a")
    b = open_system(tmp_path / "b")
    assert a.owner.owner_id != b.owner.owner_id
    assert default_node_id().split(".")[0].rsplit("-", 1)[1].isdigit()
