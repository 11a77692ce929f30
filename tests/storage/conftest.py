"""Each storage test runs on both adapters: a directory (file://) and SeaweedFS (s3://)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from silverexport.storage import ExportStorage, LocalStorage
from silverexport.storage.s3 import S3Storage

PART_BYTES = 5 << 20  # S3's smallest part, so a few MiB already make several parts


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path) -> Iterator[ExportStorage]:
    if request.param == "file":
        store: ExportStorage = LocalStorage(tmp_path / "exports")
    else:
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        store = S3Storage(
            bucket,
            "exports/",
            endpoint_url=server.endpoint_url,
            part_bytes=PART_BYTES,
            max_in_flight=2,
        )
    yield store
    store.close()
