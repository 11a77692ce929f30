"""A deployment with no shared directory (SPEC §8): real `serve` nodes with data dirs of their
own, the event log and the Silver store on one real PostgreSQL server, export files in a real
SeaweedFS bucket.

The log and the Silver store are two databases on that server, as an operator would keep them:
the log's database holds the append-only guard, the leases and what `verify` checks, while the
Silver tables are written by other programs with plain SQL, backed up on their own terms and
granted to other roles. Two databases also prove that nothing relies on their being one (no
transaction spans both).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.multinode import Cluster
from tests.s3_server import S3Server

LEASE = 2.0
PREFIX = "exports/"


@dataclass(frozen=True)
class Backends:
    """Where the deployment keeps everything: nothing of it on a node's disk."""

    event_log_url: str
    silver_url: str
    s3: S3Server
    bucket: str

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket}/{PREFIX.rstrip('/')}"

    def storage_env(self) -> dict[str, str]:
        return {"SILVEREXPORT_S3_ENDPOINT_URL": self.s3.endpoint_url, **self.s3.env()}

    def cluster(self, root: Path, **options) -> Cluster:
        return Cluster(
            root,
            self.event_log_url,
            lease_seconds=options.pop("lease_seconds", LEASE),
            silver_url=self.silver_url,
            storage_url=self.storage_url,
            storage_env=self.storage_env(),
            **options,
        )

    # -- the bucket, as boto3 sees it ---------------------------------------------------

    def objects(self, job_id: str = "") -> list[str]:
        """Every object key (under the prefix) of `job_id`'s files, or of all."""
        pages = self.s3.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"].removeprefix(PREFIX)
            for page in pages.paginate(Bucket=self.bucket, Prefix=PREFIX + job_id)
            for item in page.get("Contents", [])
        )

    def sizes(self) -> dict[str, int]:
        """Every object (key under the prefix) and its size."""
        pages = self.s3.client().get_paginator("list_objects_v2")
        return {
            item["Key"].removeprefix(PREFIX): item["Size"]
            for page in pages.paginate(Bucket=self.bucket, Prefix=PREFIX)
            for item in page.get("Contents", [])
        }

    def uploads(self, job_id: str = "") -> list[tuple[str, str]]:
        """Multipart uploads not completed nor aborted: (key under the prefix, upload id)."""
        listed = self.s3.client().list_multipart_uploads(Bucket=self.bucket, Prefix=PREFIX + job_id)
        return sorted(
            (u["Key"].removeprefix(PREFIX), u["UploadId"]) for u in listed.get("Uploads", [])
        )

    def parts(self, job_id: str) -> int:
        """How many parts the job's uploads in progress have sent."""
        client = self.s3.client()
        return sum(
            len(
                client.list_parts(Bucket=self.bucket, Key=PREFIX + key, UploadId=ref).get(
                    "Parts", []
                )
            )
            for key, ref in self.uploads(job_id)
        )


@contextmanager
def made_backends(postgres_server, event_log_url: str, s3: S3Server, bucket: str):
    """Backends on the session's servers: a second database for the Silver store, dropped
    after."""
    silver_db = postgres_server.fresh_database()
    try:
        yield Backends(event_log_url, postgres_server.url(silver_db), s3, bucket)
    finally:
        postgres_server.drop_database(silver_db)


@pytest.fixture
def backends(postgres_server, postgres_url, s3_server, s3_bucket) -> Iterator[Backends]:
    with made_backends(postgres_server, postgres_url, s3_server, s3_bucket) as made:
        yield made
