"""The storage contract: what the exporter, downloads and sweeps rely on, on every adapter."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from silverexport.storage import (
    ExportStorage,
    ExportStorageError,
    stream_range,
    sweep_partials,
)

from .conftest import PART_BYTES


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def read_all(storage: ExportStorage, key: str, start: int = 0, length: int | None = None):
    return b"".join(storage.read(key, start, length))


def test_a_file_is_invisible_until_commit_then_whole(storage: ExportStorage):
    data = payload(300_000)
    writer = storage.open_writer("job1.csv")
    writer.write(data[:1000])
    writer.write(data[1000:])
    assert storage.size("job1.csv") is None
    assert storage.list() == []
    writer.commit()
    assert storage.size("job1.csv") == len(data)
    assert storage.list() == ["job1.csv"]
    assert read_all(storage, "job1.csv") == data
    assert storage.list_partials() == []


def test_big_file_in_several_parts_round_trips(storage: ExportStorage):
    size = 3 * PART_BYTES + 12_345
    data = payload(size, seed=11)
    writer = storage.open_writer("big.jsonl")
    for at in range(0, size, 64 * 1024 + 17):  # odd chunk size: parts do not align with writes
        writer.write(data[at : at + 64 * 1024 + 17])
    writer.commit()
    assert storage.size("big.jsonl") == size
    digest = hashlib.sha256()
    chunks = 0
    for chunk in storage.read("big.jsonl"):
        digest.update(chunk)
        chunks += 1
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert chunks > 1  # streamed in pieces, never as one bytes object


def test_empty_file(storage: ExportStorage):
    writer = storage.open_writer("empty.csv")
    writer.commit()
    assert storage.size("empty.csv") == 0
    assert read_all(storage, "empty.csv") == b""


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, 1), (0, 100_000), (99_999, 1), (12_345, 54_321), (50_000, None), (100_000, None)],
)
def test_ranged_reads(storage: ExportStorage, start: int, length: int | None):
    data = payload(100_000, seed=3)
    writer = storage.open_writer("r.csv")
    writer.write(data)
    writer.commit()
    end = None if length is None else start + length
    assert read_all(storage, "r.csv", start, length) == data[start:end]


def test_zero_length_read_is_empty(storage: ExportStorage):
    writer = storage.open_writer("z.csv")
    writer.write(b"abc")
    writer.commit()
    assert read_all(storage, "z.csv", 1, 0) == b""


def test_ranged_read_across_parts(storage: ExportStorage):
    data = payload(2 * PART_BYTES + 10, seed=5)
    writer = storage.open_writer("x.csv")
    writer.write(data)
    writer.commit()
    start, length = PART_BYTES - 100, 300  # straddles the first part boundary
    assert read_all(storage, "x.csv", start, length) == data[start : start + length]


def test_abort_leaves_nothing(storage: ExportStorage):
    writer = storage.open_writer("gone.csv", attempt=1)
    writer.write(payload(2 * PART_BYTES + 1))  # past a part: an upload is under way
    writer.abort()
    assert storage.size("gone.csv") is None
    assert storage.list() == []
    assert storage.list_partials() == []
    with pytest.raises(ExportStorageError):
        writer.write(b"more")
    with pytest.raises(ExportStorageError):
        writer.commit()


def test_writer_closed_after_commit(storage: ExportStorage):
    writer = storage.open_writer("c.csv")
    writer.write(b"done")
    writer.commit()
    with pytest.raises(ExportStorageError):
        writer.write(b"late")
    writer.abort()  # after commit, abort leaves the committed file alone
    assert read_all(storage, "c.csv") == b"done"


def test_a_failed_attempt_does_not_touch_the_next(storage: ExportStorage):
    first = storage.open_writer("job.csv", attempt=1)
    first.write(payload(PART_BYTES + 5, seed=1))
    second = storage.open_writer("job.csv", attempt=2)
    second.write(b"attempt two\n")
    first.abort()
    second.commit()
    assert read_all(storage, "job.csv") == b"attempt two\n"
    assert storage.list_partials() == []


def test_delete(storage: ExportStorage):
    writer = storage.open_writer("d.csv")
    writer.write(b"x,y\n")
    writer.commit()
    assert storage.delete("d.csv") is True
    assert storage.size("d.csv") is None
    assert storage.delete("d.csv") is False
    with pytest.raises(FileNotFoundError):
        read_all(storage, "d.csv")


def test_missing_file_reads_as_not_found(storage: ExportStorage):
    assert storage.size("nope.csv") is None
    with pytest.raises(FileNotFoundError):
        read_all(storage, "nope.csv")


def test_list_by_prefix(storage: ExportStorage):
    for key in ("a1.csv", "a2.json", "b1.csv"):
        w = storage.open_writer(key)
        w.write(key.encode())
        w.commit()
    pending = storage.open_writer("a3.csv")
    pending.write(b"not yet")
    assert storage.list() == ["a1.csv", "a2.json", "b1.csv"]
    assert storage.list("a") == ["a1.csv", "a2.json"]
    pending.abort()


@pytest.mark.parametrize("key", ["", "../escape.csv", "sub/dir.csv", "nul\0.csv"])
def test_keys_are_plain_names(storage: ExportStorage, key: str):
    with pytest.raises(ExportStorageError):
        storage.open_writer(key)


def test_stream_range_on_the_event_loop(storage: ExportStorage):
    data = payload(PART_BYTES + 999, seed=9)
    writer = storage.open_writer("s.csv")
    writer.write(data)
    writer.commit()

    async def collect(start: int, length: int | None) -> bytes:
        return b"".join([chunk async for chunk in stream_range(storage, "s.csv", start, length)])

    assert asyncio.run(collect(0, None)) == data
    assert asyncio.run(collect(10, 5000)) == data[10:5010]


def test_sweep_drops_partials_of_jobs_that_are_over_only(storage: ExportStorage):
    over = storage.open_writer("over.csv", attempt=1)
    over.write(payload(PART_BYTES + 1, seed=2))
    running = storage.open_writer("running.csv", attempt=1)
    running.write(payload(PART_BYTES + 1, seed=4))
    # Writers that are neither committed nor aborted stand for a process that died mid-write
    # (the crash test below does it for real); the sweep must tell them apart by job.
    # S3 lists the multipart uploads; a directory lists the .part files
    assert {p.key for p in storage.list_partials()} == {"over.csv", "running.csv"}
    assert sweep_partials(storage, lambda key: key == "over.csv") == 1
    assert {p.key for p in storage.list_partials()} == {"running.csv"}
    running.write(b"tail")
    running.commit()
    assert storage.size("running.csv") == PART_BYTES + 5
    assert storage.size("over.csv") is None
    over.abort()
