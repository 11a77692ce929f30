"""`silverexport export`: one export through the actor system from the command line — its
formats, filters, -o, --timeout, and exit codes (0 done, 1 the job did not complete, 2 bad
input)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from silverexport.__main__ import main
from silverexport.model import JobStatus
from silverexport.silver.catalog import get_dataset
from silverexport.silver.store import SilverStore
from silverexport.system import ExportSystem
from tests.actors.conftest import transfer_rows
from tests.stored import stored_bytes

# These tests write silver.db in the data dir themselves: the SQLite Silver file.
pytestmark = pytest.mark.sqlite_silver

ROOT = Path(__file__).resolve().parents[1]
HEADER = list(get_dataset("token_transfers").column_names)
T1, T2 = 6, 3  # rows of target t1 (ids 1-6), then of t2 (ids 7-9); networks alternate


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    with SilverStore(data / "silver.db") as store:
        store.ingest("token_transfers", transfer_rows(T1, target="t1"))
        store.ingest("token_transfers", transfer_rows(T2, target="t2", start=T1))
    return data


def export(data: Path, *args: str) -> int:
    return main(["export", "token_transfers", "--data-dir", str(data), *args])


def csv_rows(content: bytes) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(content.decode(), newline=""))
    header = next(reader)
    assert header == HEADER
    return [dict(zip(header, row, strict=True)) for row in reader]


def jobs_in(data: Path) -> list:
    with ExportSystem.open(data, run_jobs=False) as system:
        return system.list(limit=100)[0]


def test_csv_to_a_file(data, tmp_path, capsys):
    out = tmp_path / "transfers.csv"
    assert export(data, "--format", "csv", "-o", str(out)) == 0
    rows = csv_rows(out.read_bytes())
    assert [r["id"] for r in rows] == [str(i) for i in range(1, T1 + T2 + 1)]
    assert rows[1]["token_symbol"] == 'US"D, C\n' and rows[0]["token_symbol"] == ""
    assert rows[3]["amount"] == "3.000000000000000001"
    printed = capsys.readouterr()
    assert printed.out == ""
    (job,) = jobs_in(data)
    assert f"job {job.job_id} completed: {T1 + T2} rows, {out.stat().st_size} bytes" in printed.err
    assert f"sha256 {job.sha256}\nfile: {out}\n" in printed.err


def test_jsonl_to_stdout_is_the_file_s_bytes(data, capsysbinary):
    assert export(data, "--format", "jsonl", "-o", "-", "--target-id", "t2") == 0
    out = capsysbinary.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["target_id"]) for r in lines] == [(7, "t2"), (8, "t2"), (9, "t2")]
    (job,) = jobs_in(data)
    with ExportSystem.open(data, run_jobs=False) as system:
        assert stored_bytes(system, job) == out


@pytest.mark.file_storage  # where the file lies when the store is the data dir
def test_without_o_the_file_stays_in_the_data_dir(data, capsys):
    assert export(data, "--format", "csv") == 0
    (job,) = jobs_in(data)
    err = capsys.readouterr().err
    with ExportSystem.open(data, run_jobs=False) as system:
        path = system.file_path(job)
    assert f"file: {path}\n" in err and path.parent == data / "exports"
    assert len(csv_rows(path.read_bytes())) == T1 + T2


@pytest.mark.parametrize(
    ("flags", "ids"),
    [
        (["--target-id", "t1"], [1, 2, 3, 4, 5, 6]),
        (["--network", "ethereum"], [2, 4, 6, 8]),
        (["--target-id", "t2", "--network", "arbitrum"], [7, 9]),
        (["--from", "2023-11-14T22:13:22Z", "--to", "2023-11-14T22:13:24Z"], [3, 4]),
        (["--target-id", "nobody"], []),
        (["--limit", "4"], [1, 2, 3, 4]),
    ],
)
def test_filters(data, capsysbinary, flags, ids):
    assert export(data, "--format", "jsonl", "-o", "-", *flags) == 0
    out = capsysbinary.readouterr().out
    assert [json.loads(line)["id"] for line in out.splitlines()] == ids


def test_a_limit_that_cuts_rows_says_truncated(data, capsys):
    assert export(data, "--format", "csv", "--limit", "2") == 0
    assert "completed: 2 rows" in capsys.readouterr().err.replace("(truncated)", "")
    (job,) = jobs_in(data)
    assert job.truncated
    assert export(data, "--format", "csv", "--limit", str(T1 + T2)) == 0
    assert "(truncated)" not in capsys.readouterr().err


def test_gzip_holds_the_same_bytes(data, tmp_path):
    plain, packed = tmp_path / "a.csv", tmp_path / "a.csv.gz"
    assert export(data, "--format", "csv", "-o", str(plain)) == 0
    assert export(data, "--format", "csv", "--gzip", "-o", str(packed)) == 0
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()


def test_max_records_from_the_environment_caps_the_export(data, capsysbinary, monkeypatch):
    monkeypatch.setenv("SILVEREXPORT_MAX_RECORDS", "3")
    assert export(data, "--format", "jsonl", "-o", "-") == 0
    assert len(capsysbinary.readouterr().out.splitlines()) == 3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--format", "csv", "--from", "yesterday"], '"from" is not a valid time'),
        (["--format", "csv", "--to", "2024-13-01T00:00:00Z"], '"to" is not a valid time'),
        (["--format", "csv", "--limit", "0"], '"limit" must be between 1 and'),
        (["--format", "csv", "--limit", "100001"], '"limit" must be between 1 and'),
        (["--format", "csv", "--target-id", ""], "target_id"),
        (["--format", "csv", "-o", "/nonexistent/dir/x.csv"], "no directory /nonexistent/dir"),
    ],
)
def test_bad_input_is_exit_2_with_a_reason_and_records_nothing(data, capsys, flags, message):
    assert export(data, *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("silverexport: error: ") and message in err, err
    assert "Traceback" not in err
    assert jobs_in(data) == []


def test_an_unknown_dataset_names_the_valid_ones(data, capsys):
    assert main(["export", "tokens", "--format", "csv", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'tokens'" in err and "token_transfers" in err
    assert jobs_in(data) == []


def test_o_naming_a_directory_is_refused(data, tmp_path, capsys):
    assert export(data, "--format", "csv", "-o", str(tmp_path)) == 2
    assert "it is a directory" in capsys.readouterr().err
    assert jobs_in(data) == []


@pytest.mark.parametrize(
    "flags",
    [["--format", "xml"], [], ["--format", "csv", "--limit", "ten"], ["--format", "csv", "-x"]],
)
def test_flags_argparse_refuses_are_exit_2(data, capsys, flags):
    with pytest.raises(SystemExit) as exited:
        export(data, *flags)
    assert exited.value.code == 2
    assert "usage: silverexport" in capsys.readouterr().err


def run_cli(*args: str, data: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "silverexport", "export", *args, "--data-dir", str(data)],
        cwd=ROOT,
        env=None if env is None else os.environ | env,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_as_a_process_exit_codes_and_stdout(data):
    done = run_cli(
        "token_transfers", "--format", "csv", "-o", "-", "--network", "arbitrum", data=data
    )
    assert done.returncode == 0, done.stderr
    assert [r["id"] for r in csv_rows(done.stdout)] == ["1", "3", "5", "7", "9"]
    bad = run_cli("token_transfers", "--format", "csv", "--from", "soon", data=data)
    assert bad.returncode == 2 and bad.stdout == b""
    assert bad.stderr.decode().startswith('silverexport: error: "from" is not a valid time')


# Every slot reserved for ingestion: a real configuration in which no export can start, so the
# job is certain to be still queued when --timeout runs out.
NO_EXPORT_SLOTS = {
    "SILVEREXPORT_SLOTS_TOTAL": "1",
    "SILVEREXPORT_INGESTION_RESERVE": "1",
    "SILVEREXPORT_EXPORT_RESERVE": "0",
}


def test_a_timeout_cancels_the_job_and_says_so_in_one_line(data):
    done = run_cli(
        "token_transfers", "--format", "csv", "--timeout", "0.5", data=data, env=NO_EXPORT_SLOTS
    )
    assert done.returncode == 1 and done.stdout == b""
    (job,) = jobs_in(data)
    assert done.stderr.decode() == (
        f"silverexport: error: job {job.job_id} was still queued after --timeout 0.5 s; "
        "it has been cancelled\n"
    )
    assert job.status is JobStatus.CANCELLED


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_a_timeout_that_is_not_positive_is_exit_2_and_records_nothing(data, capsys, value):
    assert export(data, "--format", "csv", "--timeout", value) == 2
    assert capsys.readouterr().err == (
        "silverexport: error: --timeout must be a positive number of seconds\n"
    )
    assert jobs_in(data) == []
