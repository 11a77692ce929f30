"""`export -o FILE` writes FILE as the job's file is written: FILE gets exactly the job file's
bytes, is a file of its own, appears whole, and nothing is left beside it. Where renaming onto
FILE would not do what a copy does (a link, a second hard link), the job's file is copied."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest

from silverexport.__main__ import main
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import export_to_file
from silverexport.system import ExportSystem
from tests.actors.conftest import transfer_rows
from tests.stored import stored_bytes

# These tests write silver.db in the data dir themselves: the SQLite Silver file.
pytestmark = pytest.mark.sqlite_silver

ROWS = 40


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    with SilverStore(data / "silver.db") as store:
        store.ingest("token_transfers", transfer_rows(ROWS))
    return data


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


def export(data: Path, out: Path, *args: str) -> int:
    return main(["export", "token_transfers", "--data-dir", str(data), "-o", str(out), *args])


def job_file(data: Path) -> Path:
    with ExportSystem.open(data, run_jobs=False) as system:
        (job,) = system.list(limit=10)[0]
        return system.file_path(job)


def job_bytes(data: Path) -> bytes:
    """The job's file as its store holds it (a directory or a bucket)."""
    with ExportSystem.open(data, run_jobs=False) as system:
        (job,) = system.list(limit=10)[0]
        return stored_bytes(system, job)


@pytest.mark.parametrize("flags", [["--format", "csv"], ["--format", "jsonl", "--gzip"]])
def test_file_gets_the_job_file_s_bytes_and_nothing_is_left_beside_it(data, out_dir, flags):
    out = out_dir / "transfers.out"
    assert export(data, out, *flags) == 0
    assert out.read_bytes() == job_bytes(data)
    if "--gzip" in flags:
        assert gzip.decompress(out.read_bytes()).count(b"\n") == ROWS
    assert sorted(p.name for p in out_dir.iterdir()) == ["transfers.out"]


@pytest.mark.file_storage  # about the job's file in the export directory, beside -o's
def test_writing_to_file_later_leaves_the_job_file_alone(data, out_dir):
    out = out_dir / "transfers.csv"
    assert export(data, out, "--format", "csv") == 0
    stored = job_file(data)
    before = stored.read_bytes()
    assert not os.path.samefile(out, stored)
    with open(out, "r+b") as f:  # an in-place write, as an editor or a script might do
        f.write(b"XXXX")
    assert stored.read_bytes() == before


def test_an_existing_file_is_replaced_and_keeps_its_permissions(data, out_dir):
    out = out_dir / "transfers.csv"
    out.write_bytes(b"old content that is longer than nothing\n" * 100)
    out.chmod(0o640)
    assert export(data, out, "--format", "csv") == 0
    assert out.read_bytes() == job_bytes(data)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(p.name for p in out_dir.iterdir()) == ["transfers.csv"]


def test_a_symlink_is_written_through(data, out_dir, tmp_path):
    target = tmp_path / "real.csv"
    target.write_bytes(b"old")
    link = out_dir / "link.csv"
    link.symlink_to(target)
    assert export(data, link, "--format", "csv") == 0
    assert link.is_symlink()
    assert target.read_bytes() == job_bytes(data)


def test_a_file_with_a_second_hard_link_is_written_in_place(data, out_dir):
    out = out_dir / "transfers.csv"
    out.write_bytes(b"old")
    other = out_dir / "other-name.csv"
    os.link(out, other)
    assert export(data, out, "--format", "csv") == 0
    assert os.path.samefile(out, other)
    assert other.read_bytes() == job_bytes(data)


def test_a_refused_export_leaves_no_file_and_no_temporary_one(data, out_dir, capsys):
    out = out_dir / "transfers.csv"
    assert export(data, out, "--format", "csv", "--limit", "0") == 2  # refused at submit
    assert '"limit" must be between 1' in capsys.readouterr().err
    assert list(out_dir.iterdir()) == []


def test_the_writer_tees_exactly_the_file_s_bytes(data, tmp_path):
    part, copy = tmp_path / "job.part", tmp_path / "copy"
    result = export_to_file(
        data / "silver.db", "token_transfers", "csv", part, limit=ROWS, copy_to=copy
    )
    assert result.copied
    assert copy.read_bytes() == part.read_bytes()
    assert result.bytes == part.stat().st_size


@pytest.mark.parametrize("copy_to", ["missing-dir/copy", "/dev/full"])
def test_a_copy_that_cannot_be_written_is_dropped_not_the_export(data, tmp_path, copy_to):
    if copy_to == "/dev/full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    target = copy_to if copy_to.startswith("/") else tmp_path / copy_to
    part = tmp_path / "job.part"
    result = export_to_file(
        data / "silver.db", "token_transfers", "jsonl", part, limit=ROWS, copy_to=target
    )
    assert not result.copied
    assert result.rows == ROWS
    assert part.read_bytes().count(b"\n") == ROWS
