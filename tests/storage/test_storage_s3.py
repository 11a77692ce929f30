"""What only the S3 adapter has: the URL and AWS_* settings, signatures, the bucket check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from silverexport.config import Settings
from silverexport.errors import ValidationError
from silverexport.storage import ExportStorageError, check_at_start
from silverexport.storage.s3 import S3Storage


def test_settings_open_the_bucket_from_url_and_aws_variables(s3_server, s3_bucket, tmp_path):
    settings = Settings.from_env(
        {
            "SILVEREXPORT_STORAGE_URL": f"s3://{s3_bucket}/nodes/exports",
            "SILVEREXPORT_S3_ENDPOINT_URL": s3_server.endpoint_url,
        },
        data_dir=tmp_path,
    )
    storage = settings.open_storage()
    assert isinstance(storage, S3Storage)
    check_at_start(storage)
    writer = storage.open_writer("j.csv")
    writer.write(b"a,b\n1,2\n")
    writer.commit()
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["nodes/exports/j.csv"]
    storage.close()


def test_wrong_secret_is_refused_by_the_server(s3_server, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    storage = S3Storage(s3_bucket, "", endpoint_url=s3_server.endpoint_url)
    with pytest.raises(ExportStorageError, match="SILVEREXPORT_STORAGE_URL"):
        check_at_start(storage)


def test_missing_bucket_fails_the_start_check(s3_server, s3_bucket):
    storage = S3Storage("no-such-bucket-here", "", endpoint_url=s3_server.endpoint_url)
    with pytest.raises(ExportStorageError, match=r"SILVEREXPORT_STORAGE_URL.*no-such-bucket-here"):
        check_at_start(storage)


def test_abort_frees_the_uploaded_parts(s3_server, s3_bucket):
    storage = S3Storage(s3_bucket, "", endpoint_url=s3_server.endpoint_url, part_bytes=5 << 20)
    writer = storage.open_writer("a.csv")
    writer.write(b"y" * (11 << 20))
    (partial,) = storage.list_partials()
    writer.abort()
    client = s3_server.client()
    with pytest.raises(client.exceptions.NoSuchUpload):
        client.list_parts(Bucket=s3_bucket, Key="a.csv", UploadId=partial.ref)
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


@pytest.mark.parametrize(
    "url",
    ["ftp://host/x", "s3://Bad_Bucket/x", "file://otherhost/x", "file:relative/dir", "s3://"],
)
def test_a_bad_url_is_one_line_naming_the_setting(url, tmp_path):
    with pytest.raises(ValidationError, match="SILVEREXPORT_STORAGE_URL"):
        Settings.from_env({"SILVEREXPORT_STORAGE_URL": url}, data_dir=tmp_path)


def test_the_cli_exits_at_start_on_a_bad_url_without_printing_secrets(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "silverexport", "jobs", "--data-dir", str(tmp_path)],
        env={"SILVEREXPORT_STORAGE_URL": "s3://user:hunter2@bucket/x", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "SILVEREXPORT_STORAGE_URL" in lines[0]
    assert "hunter2" not in done.stderr
