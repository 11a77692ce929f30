"""Memory and start-up follow the active jobs, not the history (issue 10 item 15, SPEC §5)."""

from __future__ import annotations

import hashlib

import pytest

from silverexport import ExportRequest, ExportSystem, JobStatus
from silverexport import system as system_module
from silverexport.errors import ConflictError
from silverexport.events.log import Append
from silverexport.http import make_app

from .conftest import WAIT, transfer_rows
from .history import finished_jobs, request, write_jobs

OLD = 300
CSV = ExportRequest(dataset="token_transfers", format="csv")


def _held(system: ExportSystem) -> tuple[int, int, int]:
    """(active states in the supervisor, active views, finished views) this process holds."""
    book = system.supervisor.proxy().book.get()
    return len(book.active), len(system.views.active), len(system.views.recent)


def test_start_up_holds_the_active_jobs_only_and_old_ones_still_answer(tmp_path):
    data_dir = tmp_path / "data"
    with ExportSystem.open(data_dir) as system:
        system.store.ingest("token_transfers", transfer_rows(5))
    write_jobs(data_dir / "events.db", finished_jobs(OLD))
    ghost_queued = "f" * 32  # a dead process's queued job: active, so held
    write_jobs(data_dir / "events.db", [Append(ghost_queued, 0, [request("bob", owner="x-1")])])
    with ExportSystem.open(data_dir, run_jobs=False) as system:
        assert _held(system) == (1, 1, 0)
        old = f"{7:032x}"
        view = system.status(old, tenant="old")
        assert view.status is JobStatus.COMPLETED and view.tenant == "old"
        assert system.wait(old, timeout=1) == view
        assert [e.event.type for e in system.events(old)] == [
            "JobRequested",
            "JobStarted",
            "JobCompleted",
        ]
        page, cursor = system.list(tenant="old", limit=500)
        assert len(page) == OLD and cursor is None
        again = system.submit_request(
            ExportRequest(dataset="token_transfers", format="csv", target_id="t1"),
            tenant="old",
            idempotency_key="k7",
        )
        assert again.job.job_id == old and not again.created
        with pytest.raises(ConflictError, match="already completed"):
            system.cancel(old, tenant="old")
        assert system.status(ghost_queued).queue_position == 1
        assert _held(system)[0] == 1


async def test_finished_jobs_leave_memory_and_are_served_from_the_views(
    open_system, aiohttp_client, monkeypatch
):
    monkeypatch.setattr(system_module, "RECENT_VIEWS", 4)
    system = open_system(api_keys="alice:k1")
    system.store.ingest("token_transfers", transfer_rows(20))
    jobs = [system.submit(CSV, tenant="alice") for _ in range(12)]
    done = [system.wait(j.job_id, timeout=WAIT) for j in jobs]
    assert all(v.status is JobStatus.COMPLETED for v in done)
    assert _held(system) == (0, 0, 4)
    assert system.cached_status(jobs[0].job_id) is None  # evicted...
    client = await aiohttp_client(make_app(system))
    headers = {"Authorization": "Bearer k1"}
    resp = await client.get(f"/v1/export/jobs/{jobs[0].job_id}", headers=headers)
    assert resp.status == 200 and (await resp.json())["status"] == "completed"
    resp = await client.get(f"/v1/export/jobs/{jobs[0].job_id}/download", headers=headers)
    assert resp.status == 200
    assert hashlib.sha256(await resp.read()).hexdigest() == done[0].sha256
    resp = await client.get(f"/v1/export/jobs/{jobs[0].job_id}/events", headers=headers)
    assert [e["type"] for e in (await resp.json())["events"]][-1] == "JobCompleted"
    resp = await client.get(f"/v1/export/jobs/{jobs[0].job_id}", headers={"Authorization": "x"})
    assert resp.status == 401
    assert _held(system) == (0, 0, 4)  # ...and answering them kept nothing new
