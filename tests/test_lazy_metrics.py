"""A one-shot process (the CLI's `export`) builds no Prometheus metrics unless asked, so
that it starts without importing prometheus_client; a serving one counts from its start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from silverexport.model import ExportRequest
from silverexport.silver.store import SilverStore
from silverexport.system import ExportSystem
from tests.actors.conftest import transfer_rows

ROOT = Path(__file__).resolve().parents[1]

ONE_SHOT = """
import sys
from silverexport.model import ExportRequest
from silverexport.system import ExportSystem
with ExportSystem.open(sys.argv[1], recover=False) as system:
    job = system.submit(ExportRequest(dataset="token_transfers", format="csv"))
    assert system.wait(job.job_id, timeout=60).status == "completed"
    print("before:", "prometheus_client" in sys.modules)
    text = system.metrics.exposition().decode()
    print("after:", "prometheus_client" in sys.modules)
    print("jobs gauge:", 'silverexport_jobs{status="completed"} 1.0' in text)
"""


def _store(data: Path) -> None:
    data.mkdir()
    with SilverStore(data / "silver.db") as store:
        store.ingest("token_transfers", transfer_rows(5))


def test_a_one_shot_system_imports_prometheus_only_when_asked(tmp_path):
    _store(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-c", ONE_SHOT, str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.splitlines() == ["before: False", "after: True", "jobs gauge: True"]


def test_a_serving_system_counts_the_jobs_it_finished_before_any_scrape(tmp_path):
    _store(tmp_path / "data")
    with ExportSystem.open(tmp_path / "data") as system:
        job = system.submit(ExportRequest(dataset="token_transfers", format="jsonl"))
        system.wait(job.job_id, timeout=60)
        text = system.metrics.exposition().decode()
    line = (
        'silverexport_jobs_finished_total{dataset="token_transfers",format="jsonl",'
        'status="completed"} 1.0'
    )
    assert line in text
