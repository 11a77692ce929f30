"""A job's file names (actors/files.py) on every store: each attempt has its own, and the
earlier naming (one name per job) is still read as its job's."""

from __future__ import annotations

from silverexport.actors import files
from silverexport.storage import ExportStorage

from .conftest import PART_BYTES

JOB, OTHER = "ab" * 16, "cd" * 16


def test_each_attempt_has_a_name_of_its_own_and_both_namings_name_their_job():
    assert [files.final_name(JOB, n, "csv.gz") for n in (1, 2, 12)] == [
        f"{JOB}.a1.csv.gz",
        f"{JOB}.a2.csv.gz",
        f"{JOB}.a12.csv.gz",
    ]
    read = {
        f"{JOB}.a1.csv": 1,
        f"{JOB}.a12.parquet": 12,
        f"{JOB}.a3.jsonl.gz": 3,
        f"{JOB}.csv": None,  # the earlier naming: no attempt in the name
        f"{JOB}.csv.gz": None,
        f"{JOB}.jsonl": None,
        f"{JOB}.parquet": None,
    }
    for key, attempt in read.items():
        assert (files.job_of(key), files.attempt_of(key)) == (JOB, attempt), key


def test_removing_an_attempts_partials_leaves_later_attempts_and_every_file(
    storage: ExportStorage,
):
    """Recovery of attempt 2 drops the writes of attempts 1 and 2 (and of the earlier naming),
    never attempt 3's, another job's, or a committed file."""
    done = storage.open_writer(f"{JOB}.a2.jsonl", attempt=2)
    done.write(b"{}\n")
    done.commit()
    # Writers neither committed nor aborted stand for processes that died mid-write; a part
    # each, so that S3 holds a multipart upload for each.
    keys = [(f"{JOB}.csv", 1), (f"{JOB}.a1.csv", 1), (f"{JOB}.a2.csv", 2)]
    keys += [(f"{JOB}.a3.csv", 3), (f"{OTHER}.a1.csv", 1)]
    left = []
    for key, attempt in keys:
        writer = storage.open_writer(key, attempt)
        writer.write(b"x" * (PART_BYTES + 1))
        left.append(writer)
    assert len(storage.list_partials()) == 5
    files.remove_parts(storage, JOB, 2)
    assert sorted(p.key for p in storage.list_partials()) == [f"{JOB}.a3.csv", f"{OTHER}.a1.csv"]
    assert storage.list() == [f"{JOB}.a2.jsonl"]
    for writer in left:
        writer.abort()
    assert storage.list_partials() == []
