"""The kept documents of finished jobs: bounded, only finished ones, never a stale one."""

from __future__ import annotations

from dataclasses import replace

import orjson

from silverexport import ExportRequest
from silverexport.http.documents import EncodedDocuments
from silverexport.model import JobStatus

from .conftest import WAIT


def test_only_finished_views_are_kept_the_oldest_dropped_first(system):
    job = system.submit(ExportRequest("token_transfers", "csv"), tenant="alice")
    done = system.wait(job.job_id, WAIT)
    views = [replace(done, job_id=f"{i:032x}") for i in range(3)]
    documents = EncodedDocuments(size=2)
    for view in views:
        assert documents.of(view) == orjson.dumps(view.to_document())
    assert len(documents) == 2

    running = replace(done, job_id="f" * 32, status=JobStatus.RUNNING, finished_at=None)
    assert orjson.loads(documents.of(running))["status"] == "running"
    assert len(documents) == 2  # an active job's document changes with every report

    expired = replace(views[2], status=JobStatus.EXPIRED)  # same id, a new view
    assert orjson.loads(documents.of(expired))["status"] == "expired"
    assert orjson.loads(documents.of(views[2]))["status"] == "completed"  # its own bytes
    assert len(documents) == 2
