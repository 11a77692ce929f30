"""A writer killed mid-upload leaves nothing under the final key, and the sweep clears it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from silverexport.storage import ExportStorage, LocalStorage, sweep_partials

ROOT = Path(__file__).resolve().parents[2]


def kill_mid_upload(storage: ExportStorage, key: str, server=None) -> None:
    if isinstance(storage, LocalStorage):
        args = ["file", str(storage.directory), "", key]
    else:
        args = ["s3", storage.bucket, server.endpoint_url, key]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_writer", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, **(server.env() if server else {})},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"written\n"  # bounded by the test's timeout
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_killed_upload_leaves_no_object_and_is_swept(storage: ExportStorage, request):
    server = None if isinstance(storage, LocalStorage) else request.getfixturevalue("s3_server")
    kill_mid_upload(storage, "crash.csv", server)

    assert storage.size("crash.csv") is None
    assert storage.list() == []
    partials = storage.list_partials()
    assert [p.key for p in partials] == ["crash.csv"]
    if server is not None:  # parts were really uploaded, so there is something to free
        client = server.client()
        listed = client.list_parts(
            Bucket=storage.bucket, Key="exports/crash.csv", UploadId=partials[0].ref
        )
        assert len(listed.get("Parts", [])) >= 1

    assert sweep_partials(storage, lambda key: False) == 0  # a running job's write stays
    assert len(storage.list_partials()) == 1
    assert sweep_partials(storage, lambda key: key == "crash.csv") == 1
    assert storage.list_partials() == []
    assert storage.size("crash.csv") is None
    if server is not None:
        with pytest.raises(client.exceptions.NoSuchUpload):
            client.list_parts(
                Bucket=storage.bucket, Key="exports/crash.csv", UploadId=partials[0].ref
            )


def test_a_new_attempt_after_a_crash_publishes_whole(storage: ExportStorage, request):
    server = None if isinstance(storage, LocalStorage) else request.getfixturevalue("s3_server")
    kill_mid_upload(storage, "again.csv", server)
    writer = storage.open_writer("again.csv", attempt=2)
    writer.write(b"attempt 2\n")
    writer.commit()
    assert b"".join(storage.read("again.csv")) == b"attempt 2\n"
    assert [p.key for p in storage.list_partials()] == ["again.csv"]  # attempt 1's leftover
    sweep_partials(storage, lambda key: True)
    assert storage.list_partials() == []
    assert b"".join(storage.read("again.csv")) == b"attempt 2\n"
