"""A serving process SIGKILLed mid-upload to S3 (a real process, a real SeaweedFS): nothing
appears under the job's final key, the multipart upload it left (parts and all) is aborted
when the job is recovered, and the next attempt publishes the whole file."""

from __future__ import annotations

import hashlib

import pytest

from silverexport import ExportSystem, JobStatus
from tests.actors.conftest import WAIT, transfer_rows, wait_until
from tests.actors.test_recovery import Worker

ROWS, STALL_ROWS = 250, 200  # 64 KiB rows: the stall comes after a first 8 MiB part went out
SYMBOL = "S" * (64 << 10)
PREFIX = "exports/"


@pytest.fixture
def on_s3(s3_server, s3_bucket, monkeypatch):
    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", f"s3://{s3_bucket}/{PREFIX}")
    monkeypatch.setenv("SILVEREXPORT_S3_ENDPOINT_URL", s3_server.endpoint_url)
    return s3_server.client(), s3_bucket


def uploads(client, bucket: str) -> list[dict]:
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def objects(client, bucket: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def parts_of(client, bucket: str, upload: dict) -> list[dict]:
    listed = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return listed.get("Parts", [])


def test_sigkill_mid_upload_leaves_no_object_and_recovery_aborts_the_upload(on_s3, tmp_path):
    client, bucket = on_s3
    data_dir = tmp_path / "data"
    with ExportSystem.open(data_dir) as system:
        system.store.ingest(
            "token_transfers", [r | {"token_symbol": SYMBOL} for r in transfer_rows(ROWS)]
        )

    worker = Worker(data_dir, "submit", str(STALL_ROWS))
    try:
        lines = worker.read_until("MIDWAY", "READY")
        accepted = [line.split()[1] for line in lines if line.startswith("ACCEPTED")]
        final_key = f"{PREFIX}{accepted[0]}.a1.csv"  # attempt 1's
        left = wait_until(
            lambda: [
                u
                for u in uploads(client, bucket)
                if u["Key"] == final_key and parts_of(client, bucket, u)
            ],
            what="a part of the first job's upload on the server",
        )
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    (upload,) = left
    assert objects(client, bucket) == []  # killed mid-upload: nothing under any final key

    with ExportSystem.open(data_dir, catch_up_interval_seconds=0.05) as system:
        done = [system.wait(job_id, timeout=WAIT) for job_id in accepted]
        assert [v.status for v in done] == [JobStatus.COMPLETED] * 3
        assert done[0].attempts == 2, "the interrupted upload counts as an attempt"
        for view in done:
            body = client.get_object(Bucket=bucket, Key=PREFIX + view.file_name)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == view.sha256 and len(body) == view.bytes
        with pytest.raises(client.exceptions.NoSuchUpload):
            parts_of(client, bucket, upload)  # attempt 1's upload is aborted, its parts freed
        assert uploads(client, bucket) == []
        assert sorted(objects(client, bucket)) == sorted(PREFIX + v.file_name for v in done)
