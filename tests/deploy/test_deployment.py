"""Two real `serve` nodes with no shared directory (SPEC §8): rows ingested on one node's side
with the CLI land in the PostgreSQL Silver store, an export asked of the other node is written
to the S3 bucket, and both nodes serve the object with the same headers and bytes — the bytes a
SQLite-backed system gives for the same rows. Expiry and cancellation delete from the bucket;
the job of a SIGKILLed node is finished by the other."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from silverexport.silver.writers import Filters, export_to_file
from tests.actors.conftest import transfer_rows
from tests.reliability.multinode import wait_for
from tests.reliability.serve_process import child_env, cli

from .backends import LEASE

ROWS = 3000
JOBS = [
    {"dataset": "token_transfers", "format": "csv"},
    {"dataset": "token_transfers", "format": "jsonl", "compression": "gzip", "network": "ethereum"},
]


def write_jsonl(path, rows) -> str:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return str(path)


def sqlite_system_export(tmp_path, rows_file: str, body: dict) -> bytes:
    """The same export from a system on the defaults (SQLite log and store, a directory)."""
    data = tmp_path / "sqlite-system"
    if not (data / "silver.db").exists():
        done = cli("ingest", "token_transfers", rows_file, "--data-dir", str(data))
        assert done.returncode == 0, done.stderr
    out = tmp_path / f"sqlite-{body['format']}-{len(list(tmp_path.iterdir()))}"
    args = ["export", body["dataset"], "--format", body["format"], "-o", str(out)]
    if body.get("compression") == "gzip":
        args.append("--gzip")
    if "network" in body:
        args += ["--network", body["network"]]
    done = cli(*args, "--data-dir", str(data), env=child_env())
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def get(node, path: str, **headers: str):
    client = node.client()
    try:
        return client.request("GET", path, headers=headers)
    finally:
        client.close()


@pytest.fixture
def cluster(backends, tmp_path):
    with backends.cluster(tmp_path / "cluster") as made:
        yield made


def test_ingest_on_one_node_export_on_the_other_download_from_both(cluster, backends, tmp_path):
    a, b = cluster.start_all(["a", "b"])
    assert cluster.shared is None and not (cluster.root / "node-a" / "silver.db").exists()
    rows_file = write_jsonl(tmp_path / "rows.jsonl", transfer_rows(ROWS))
    done = cli(
        "ingest", "token_transfers", rows_file, "--data-dir", str(a.data_dir),
        env=cluster.node_env("a"),
    )  # fmt: skip
    assert (
        done.returncode == 0 and done.stdout.strip() == f"ingested {ROWS} rows into token_transfers"
    ), done

    for body in JOBS:
        status, job = b.client().json("POST", "/v1/export/dataset", body)
        assert status == 202, job
        finished = cluster.wait_job("a", job["job_id"])
        assert finished["status"] == "completed", finished
        ext = "jsonl.gz" if body.get("compression") else body["format"]
        key = f"{job['job_id']}.a1.{ext}"
        assert backends.objects(job["job_id"]) == [key]  # in the bucket, and only there
        assert not any(p.name == key for p in cluster.root.rglob("*"))
        reference = sqlite_system_export(tmp_path, rows_file, body)
        assert hashlib.sha256(reference).hexdigest() == finished["sha256"]
        check_downloads(a, b, finished, reference)
    assert backends.uploads() == []


def check_downloads(a, b, job: dict, reference: bytes) -> None:
    url, size, etag = job["download_url"], len(reference), f'"{job["sha256"]}"'
    seen = {}
    for node in (a, b):
        status, headers, content = get(node, url)
        assert (status, content) == (200, reference), (node.name, status, len(content))
        assert headers["etag"] == etag and int(headers["content-length"]) == size
        assert headers["accept-ranges"] == "bytes"
        seen[node.name] = (headers["etag"], headers["content-disposition"])

        status, headers, content = get(node, url, Range="bytes=100-1099")
        assert (status, content) == (206, reference[100:1100]), (node.name, status)
        assert headers["content-range"] == f"bytes 100-1099/{size}"
        assert headers["etag"] == etag

        status, _, content = get(node, url, Range="bytes=-77")
        assert (status, content) == (206, reference[-77:])

        status, _, content = get(node, url, Range=f"bytes={size - 10}-", **{"If-Range": etag})
        assert (status, content) == (206, reference[-10:])  # the same file: the range

        status, _, content = get(node, url, Range="bytes=0-9", **{"If-Range": '"' + "0" * 64 + '"'})
        assert (status, content) == (200, reference)  # another file's tag: all of this one
    assert seen["a"] == seen["b"]


def test_expiry_deletes_the_object_from_the_bucket(backends, tmp_path):
    cluster = backends.cluster(
        tmp_path / "cluster",
        env={"SILVEREXPORT_JOB_TTL_SECONDS": "3", "SILVEREXPORT_EXPIRY_INTERVAL_SECONDS": "0.2"},
    )
    with cluster:
        cluster.seed()
        a, b = cluster.start_all(["a", "b"])
        status, job = a.client().json("POST", "/v1/export/dataset", JOBS[0])
        assert status == 202, job
        done = cluster.wait_job(
            "b", job["job_id"], lambda j: j["status"] not in ("queued", "running")
        )
        present = backends.objects(job["job_id"])
        if cluster.job("b", job["job_id"])["status"] == "completed":  # not yet past its TTL
            assert present == [f"{job['job_id']}.a1.csv"], present
        assert done["status"] in ("completed", "expired"), done
        expired = cluster.wait_job("b", job["job_id"], lambda j: j["status"] == "expired")
        assert expired["sha256"] == done["sha256"]
        wait_for(lambda: backends.objects(job["job_id"]) == [], what="the object deleted")
        for node in (a, b):
            assert get(node, done["download_url"])[0] == 410


def test_cancel_mid_upload_aborts_the_parts_and_leaves_no_object(backends, tmp_path):
    cluster = backends.cluster(
        tmp_path / "cluster", slow_exports=True, batch_rows=1000, batch_seconds=0.1
    )
    with cluster:
        cluster.seed(transfer_rows(60_000))  # about 17 MB: parts of 8 MiB are sent as it runs
        a, b = cluster.start_all(["a", "b"])
        status, job = a.client().json("POST", "/v1/export/dataset", JOBS[0])
        assert status == 202, job
        job_id = job["job_id"]
        wait_for(lambda: backends.parts(job_id) >= 1, what="a part uploaded")
        assert backends.objects(job_id) == []
        status, cancelled = b.client().json("DELETE", f"/v1/export/jobs/{job_id}")
        assert status == 200 and cancelled["status"] == "cancelled", cancelled
        # SPEC §8: the export stops within 2 s wherever it runs; its upload goes with it.
        wait_for(lambda: backends.uploads(job_id) == [], timeout=2.0, what="the upload aborted")
        assert backends.objects(job_id) == []
        types = [e["type"] for e in cluster.events("b", job_id)]
        assert types[-1] == "JobCancelled" and "JobCompleted" not in types, types


def test_the_job_of_a_sigkilled_node_is_finished_by_the_other(backends, tmp_path):
    cluster = backends.cluster(
        tmp_path / "cluster",
        slow_exports=True,
        batch_rows=1000,
        batch_seconds=0.1,
        env={"SILVEREXPORT_EXPIRY_INTERVAL_SECONDS": "0.5"},  # the sweep of dead uploads
    )
    with cluster:
        cluster.seed(transfer_rows(60_000))
        a, b = cluster.start_all(["a", "b"])
        status, job = a.client().json("POST", "/v1/export/dataset", JOBS[0])
        assert status == 202, job
        job_id = job["job_id"]
        wait_for(lambda: backends.parts(job_id) >= 1, what="a part uploaded by a")
        cluster.kill("a")  # mid-upload, mid-export from the PostgreSQL store
        assert backends.objects(job_id) == []  # nothing under the final key
        cluster.wait_job("b", job_id, lambda j: j["attempts"] == 2, timeout=LEASE + 10)
        done = cluster.wait_job("b", job_id)
        assert (done["status"], done["attempts"]) == ("completed", 2), done
        owners = [
            e["data"]["owner"] for e in cluster.events("b", job_id) if e["type"] == "JobStarted"
        ]
        assert owners == ["a", "b"]
        reference = tmp_path / "reference.csv"
        ref = export_to_file(
            cluster.silver, "token_transfers", "csv", reference, filters=Filters(), limit=100_000
        )
        assert done["sha256"] == ref.sha256
        status, headers, content = get(b, done["download_url"])
        assert status == 200 and hashlib.sha256(content).hexdigest() == done["sha256"]
        assert headers["etag"] == f'"{done["sha256"]}"'
        assert backends.objects(job_id) == [f"{job_id}.a2.csv"]  # attempt 2's own
        wait_for(lambda: backends.uploads(job_id) == [], what="a's upload swept")
        checked = cli("verify", "--data-dir", str(b.data_dir), env=cluster.node_env("b"))
        assert checked.returncode == 0, checked.stdout + checked.stderr
