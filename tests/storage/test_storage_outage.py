"""The export store out of reach mid-operation, for real: S3 behind a loopback proxy that
closes its port (SeaweedFS's endpoint gone), a directory that is a file. Every operation of
the port fails with one ExportStorageError (one of the project's errors): one line naming the
store, no credentials; nothing half written is visible; once the store is back the same
adapter works again, and what a failed write left is swept."""

from __future__ import annotations

import socket

import pytest

from silverexport.errors import SilverExportError
from silverexport.storage import ExportStorageError, LocalStorage, Partial, sweep_partials
from silverexport.storage.s3 import S3Storage
from tests.http.cut_proxy import CutProxy

from .conftest import PART_BYTES

SECRET = "hunter2-not-for-logs"


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def behind_proxy(s3_server, s3_bucket):
    proxy = CutProxy(port_of(s3_server.endpoint_url))
    store = S3Storage(
        s3_bucket, "exports/", endpoint_url=proxy.url, part_bytes=PART_BYTES, max_in_flight=2
    )
    yield store, proxy
    store.close()
    proxy.close()


def operations(store) -> dict[str, object]:
    partial = Partial("kept.csv", "kept.csv.attempt1.part", 0.0)
    return {
        "size": lambda: store.size("kept.csv"),
        "read": lambda: list(store.read("kept.csv")),
        "delete": lambda: store.delete("kept.csv"),
        "list": store.list,
        "list_partials": store.list_partials,
        "drop_partial": lambda: store.drop_partial(partial),
        "check": store.check,
        "write": lambda: _write(store, "new.csv", b"y" * 100),
    }


def _write(store, key: str, data: bytes) -> None:
    with store.open_writer(key) as writer:
        writer.write(data)
        writer.commit()


def assert_each_fails_in_one_line(store, *, naming: str) -> None:
    for name, operation in operations(store).items():
        with pytest.raises(ExportStorageError) as caught:
            operation()
            pytest.fail(f"{name} did not fail")
        assert isinstance(caught.value, SilverExportError), name
        message = str(caught.value)
        assert message and "\n" not in message, (name, message)
        assert naming in message, (name, message)
        assert SECRET not in message, (name, message)


def test_s3_out_of_reach_every_operation_is_one_project_error_then_it_works_again(
    behind_proxy,
):
    store, proxy = behind_proxy
    _write(store, "kept.csv", b"x" * 100)
    proxy.close()  # the endpoint's port is closed now: connections are refused

    assert_each_fails_in_one_line(store, naming="Could not connect to the endpoint URL")
    proxy.reopen()
    assert store.size("kept.csv") == 100
    assert b"".join(store.read("kept.csv")) == b"x" * 100
    assert store.list() == ["kept.csv"]  # the failed write left nothing under its key
    store.check()
    _write(store, "new.csv", b"y" * 100)
    assert store.list() == ["kept.csv", "new.csv"]


def test_an_upload_cut_mid_file_is_never_visible_and_its_parts_are_swept(behind_proxy):
    store, proxy = behind_proxy
    writer = store.open_writer("big.csv")
    writer.write(b"a" * (PART_BYTES + 1))  # a multipart upload is under way
    proxy.close()
    writer.write(b"b" * PART_BYTES)
    with pytest.raises(ExportStorageError, match=r"^the export store s3://\S+ could not"):
        writer.commit()
    proxy.reopen()
    assert store.size("big.csv") is None and store.list() == []
    # Its abort could not reach the store either: the upload is left, until the sweep.
    sweep_partials(store, lambda key: key == "big.csv")
    assert store.list_partials() == []


def test_credentials_in_the_endpoint_url_are_masked(s3_bucket):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3Storage(s3_bucket, endpoint_url=f"http://user:{SECRET}@127.0.0.1:{port}")
    try:
        with pytest.raises(ExportStorageError) as caught:
            store.size("kept.csv")
        assert "user:***@127.0.0.1" in str(caught.value)
        assert_each_fails_in_one_line(store, naming="user:***@")
    finally:
        store.close()


def test_a_directory_that_is_a_file_fails_every_operation_then_works_again(tmp_path):
    directory = tmp_path / "exports"
    store = LocalStorage(directory)
    _write(store, "kept.csv", b"x" * 100)
    moved = tmp_path / "moved"
    directory.rename(moved)
    directory.write_bytes(b"not a directory")

    assert_each_fails_in_one_line(store, naming=str(directory))
    directory.unlink()
    moved.rename(directory)
    assert store.size("kept.csv") == 100
    _write(store, "new.csv", b"y" * 100)
    assert store.list() == ["kept.csv", "new.csv"] and store.list_partials() == []
