"""A deployment with no shared filesystem at all (issue 12): two real `serve` nodes on one
PostgreSQL database for the event log and the Silver store, files in S3 (SeaweedFS). Rows are
ingested through one node's command line, exported by the other node, downloaded from both
(whole and ranged), and the expired job's object is gone from the bucket."""

from __future__ import annotations

import hashlib
import json

from silverexport.silver.store import SilverStore
from silverexport.silver.writers import export_to_file
from tests.http.conftest import transfer_rows
from tests.reliability.multinode import Cluster, wait_for
from tests.reliability.serve_process import cli

TTL = 6.0


def test_ingest_on_one_node_export_on_the_other_download_from_both(
    tmp_path, postgres_url, s3_server, s3_bucket
):
    env = {
        "SILVEREXPORT_SILVER_URL": postgres_url,
        "SILVEREXPORT_STORAGE_URL": f"s3://{s3_bucket}/exports",
        "SILVEREXPORT_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "SILVEREXPORT_JOB_TTL_SECONDS": str(TTL),
        **s3_server.env(),
    }
    rows = transfer_rows(300)
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with Cluster(tmp_path / "cluster", postgres_url, env=env) as cluster:
        a, b = cluster.start_all(["a", "b"])
        done = cli(
            "ingest",
            "token_transfers",
            str(source),
            "--data-dir",
            str(a.data_dir),
            env=cluster.node_env("a"),
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "ingested 300 rows into token_transfers\n"

        status, job = b.client().json(
            "POST", "/v1/export/dataset", {"dataset": "token_transfers", "format": "csv"}
        )
        assert status == 202, job
        job_id = job["job_id"]
        finished = cluster.wait_job("a", job_id)
        assert finished["status"] == "completed" and finished["rows"] == 300, finished

        whole = {}
        for node in (a, b):
            path = f"/v1/export/jobs/{job_id}/download"
            status, headers, body = node.client().request("GET", path)
            assert status == 200, (node.name, body[:200])
            whole[node.name] = (body, headers["etag"])
            status, headers, part = node.client().request(
                "GET", path, headers={"Range": "bytes=100-199"}
            )
            assert status == 206 and part == body[100:200], node.name
        assert whole["a"] == whole["b"]
        assert hashlib.sha256(whole["a"][0]).hexdigest() == finished["sha256"]

        # The same rows in a SQLite store give the same file.
        with SilverStore(tmp_path / "reference.db") as lite:
            lite.ingest("token_transfers", rows)
        reference = export_to_file(lite.path, "token_transfers", "csv", tmp_path / "r", limit=1000)
        assert reference.sha256 == finished["sha256"]

        for node in (a, b):  # nothing of the data on any node's disk
            assert not (node.data_dir / "silver.db").exists()
            assert not list(node.data_dir.glob("exports/*"))
        objects = s3_server.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0)
        assert objects == 1

        expired = cluster.wait_job(
            "b", job_id, timeout=TTL + 30, done=lambda j: j["status"] == "expired"
        )
        assert expired["status"] == "expired"
        wait_for(
            lambda: s3_server.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0,
            what="the expired job's object to be deleted",
        )
        status, _, _ = a.client().request("GET", f"/v1/export/jobs/{job_id}/download")
        assert status == 410
