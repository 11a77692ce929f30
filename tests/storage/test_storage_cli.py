"""`silverexport export` with its file in S3: -o and stdout copy the object out of the store;
a store that fails mid-copy or is out of reach at start is one line and exit status 2, and
leaves no FILE half written."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import secrets
import socket
from pathlib import Path

import pytest

from silverexport.__main__ import main
from silverexport.silver.store import SilverStore
from tests.actors.conftest import transfer_rows
from tests.http.cut_proxy import CutProxy
from tests.reliability.serve_process import child_env, cli


def test_export_o_copies_the_object_out_of_the_bucket(
    s3_server, s3_bucket, tmp_path, monkeypatch, capsysbinary
):
    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", f"s3://{s3_bucket}/cli")
    monkeypatch.setenv("SILVEREXPORT_S3_ENDPOINT_URL", s3_server.endpoint_url)
    data = tmp_path / "data"
    data.mkdir()
    with SilverStore(data / "silver.db") as store:
        store.ingest("token_transfers", transfer_rows(40))
    out = tmp_path / "transfers.csv"
    command = ["export", "token_transfers", "--data-dir", str(data), "--format", "csv"]

    assert main([*command, "-o", str(out)]) == 0
    err = capsysbinary.readouterr().err.decode()
    client = s3_server.client()
    (obj,) = client.list_objects_v2(Bucket=s3_bucket, Prefix="cli/")["Contents"]
    stored = client.get_object(Bucket=s3_bucket, Key=obj["Key"])["Body"].read()
    assert out.read_bytes() == stored
    assert len(list(csv.reader(io.StringIO(stored.decode(), newline="")))) == 1 + 40
    assert f"sha256 {hashlib.sha256(stored).hexdigest()}\nfile: {out}\n" in err
    assert not (data / "exports").exists() or not any((data / "exports").iterdir())

    assert main([*command, "-o", "-"]) == 0
    assert capsysbinary.readouterr().out == stored  # same rows, same bytes


# -- the store failing mid-copy -----------------------------------------------------------------

CUT_AFTER = 3 << 20  # answer bytes each store connection passes once armed: past the first
# read chunk of the file, well short of its end; every other answer (HEAD, uploads) is small


def big_store(data: Path, rows: int = 200) -> None:
    """Rows of random 64 KiB symbols: a file of about 10 MiB in any format (zstd included)."""
    data.mkdir()
    wide = [row | {"token_symbol": secrets.token_urlsafe(48 << 10)} for row in transfer_rows(rows)]
    with SilverStore(data / "silver.db") as store:
        store.ingest("token_transfers", wide)


@pytest.fixture
def cut_store(s3_server, s3_bucket, monkeypatch):
    proxy = CutProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))
    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", f"s3://{s3_bucket}/cli/")
    monkeypatch.setenv("SILVEREXPORT_S3_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.close()


def assert_one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("silverexport: error: "), stderr[-3000:]
    assert "Traceback" not in stderr
    return lines[0]


def test_export_to_stdout_with_the_store_failing_mid_copy_exits_2_in_one_line(cut_store, tmp_path):
    data = tmp_path / "data"
    big_store(data)
    cut_store.arm(CUT_AFTER)
    env = {**child_env(), **{k: os.environ[k] for k in os.environ if k.startswith(("AWS_",))}}
    env |= {
        "SILVEREXPORT_STORAGE_URL": os.environ["SILVEREXPORT_STORAGE_URL"],
        "SILVEREXPORT_S3_ENDPOINT_URL": cut_store.url,
    }
    done = cli(
        "export", "token_transfers", "--format", "csv", "--data-dir", str(data), "-o", "-", env=env
    )
    assert done.returncode == 2, done.stderr[-3000:]
    line = assert_one_error_line(done.stderr)
    assert "could not read" in line and "to its end" in line, line
    assert cut_store.cuts >= 1
    assert len(done.stdout) < 10 << 20  # what had passed; the exit status says it is not all


def test_export_o_file_with_the_store_failing_mid_copy_leaves_no_file(cut_store, tmp_path, capsys):
    data = tmp_path / "data"
    big_store(data)
    out = tmp_path / "out" / "transfers.parquet"
    out.parent.mkdir()
    cut_store.arm(CUT_AFTER)  # parquet is copied out of the store once complete (no tee)
    command = ["export", "token_transfers", "--data-dir", str(data), "--format", "parquet"]
    assert main([*command, "-o", str(out)]) == 2
    assert_one_error_line(capsys.readouterr().err)
    assert list(out.parent.iterdir()) == []  # neither FILE half written, nor a temporary file

    cut_store.arm(1 << 40)  # the store whole again: the same command writes FILE whole
    assert main([*command, "-o", str(out)]) == 0
    assert out.stat().st_size > CUT_AFTER and list(out.parent.iterdir()) == [out]


@pytest.mark.parametrize("command", [["jobs"], ["prune"], ["export", "token_transfers"]])
def test_a_store_out_of_reach_at_start_is_one_line_and_exit_2(
    command, s3_bucket, tmp_path, capsys, monkeypatch
):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", f"s3://{s3_bucket}/cli/")
    monkeypatch.setenv("SILVEREXPORT_S3_ENDPOINT_URL", f"http://me:sesame99@127.0.0.1:{port}")
    extra = ["--format", "csv"] if command[0] == "export" else []
    assert main([*command, *extra, "--data-dir", str(tmp_path / "data")]) == 2
    line = assert_one_error_line(capsys.readouterr().err)
    assert "SILVEREXPORT_STORAGE_URL" in line and "sesame99" not in line, line
    assert "me:***@" in line, line
