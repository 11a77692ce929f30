"""Export files in an S3-compatible bucket (`s3://bucket/prefix`), through boto3.

Writes are multipart uploads: bytes gather into parts of `part_bytes`, each part is sent by a
small pool while the next one fills, and at most `max_in_flight` parts wait, so memory is
bounded by about (max_in_flight + 1) * part_bytes whatever the file's size. Nothing is under
the final key until `complete_multipart_upload` (S3 makes the object appear whole, at once);
`abort()` aborts the upload, and uploads left by a crash are listed and aborted by the sweep.
A file smaller than one part is sent with a single `put_object`, atomic as well.

Why boto3: the exporter writes from its own actor thread, so a blocking client costs the event
loop nothing there; downloads run each blocking read off the loop (`stream_range`). boto3 has
the multipart listing the sweep needs (obstore does not expose it) and needs no event loop in
the exporter's thread (aiobotocore does); bench/storage.py measures it against boto3's own
threaded transfers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .port import READ_CHUNK_BYTES, Partial, StorageError

log = logging.getLogger(__name__)

PART_BYTES = 8 << 20  # S3's floor is 5 MiB for every part but the last
MAX_IN_FLIGHT = 4


def make_client(endpoint_url: str | None, max_connections: int = 16) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=max_connections,
        retries={"mode": "standard", "max_attempts": 5},
        # path style: S3-compatible servers on a plain host:port have no bucket subdomains
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)


def _missing(e: Exception) -> bool:
    code = getattr(e, "response", {}).get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


class S3Writer:
    def __init__(self, storage: S3Storage, key: str):
        self.key = key
        self._s3 = storage
        self._object_key = storage.object_key(key)
        self._part_bytes = storage.part_bytes
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._futures: list[Future[dict[str, Any]]] = []
        self._room = threading.BoundedSemaphore(storage.max_in_flight)
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def write(self, data: bytes) -> int:
        if self._closed:
            raise StorageError(f"writer for {self.key} is already closed")
        if data:
            self._buffer.append(bytes(data))
            self._buffered += len(data)
            if self._buffered >= self._part_bytes:
                self._send_part()
        return len(data)

    def _take(self) -> bytes:
        data = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        return data

    def _send_part(self) -> None:
        self._raise_failed()
        client, bucket = self._s3.client, self._s3.bucket
        if self._upload_id is None:
            made = client.create_multipart_upload(Bucket=bucket, Key=self._object_key)
            self._upload_id = made["UploadId"]
            self._pool = ThreadPoolExecutor(
                self._s3.max_in_flight, thread_name_prefix="silverexport-s3-part"
            )
        number = len(self._futures) + 1
        body = self._take()
        self._room.acquire()  # blocks the producer while max_in_flight parts are on the way
        assert self._pool is not None
        future = self._pool.submit(self._upload, number, body)
        future.add_done_callback(lambda _f: self._room.release())
        self._futures.append(future)

    def _upload(self, number: int, body: bytes) -> dict[str, Any]:
        answer = self._s3.client.upload_part(
            Bucket=self._s3.bucket,
            Key=self._object_key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _raise_failed(self) -> None:
        for f in self._futures:
            if f.done() and f.exception() is not None:
                raise StorageError(f"upload of {self.key} failed: {f.exception()}")

    def commit(self) -> None:
        if self._closed:
            raise StorageError(f"writer for {self.key} is already closed")
        try:
            if self._upload_id is None:
                self._s3.client.put_object(
                    Bucket=self._s3.bucket, Key=self._object_key, Body=self._take()
                )
            else:
                if self._buffered:
                    self._send_part()
                parts = [f.result() for f in self._futures]
                self._s3.client.complete_multipart_upload(
                    Bucket=self._s3.bucket,
                    Key=self._object_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._shutdown()

    def abort(self) -> None:
        """Stop sending, then abort the upload (S3 frees its parts); never raises."""
        self._closed = True
        self._buffer, self._buffered = [], 0
        for f in self._futures:
            f.cancel()
        self._shutdown()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            try:
                self._s3.client.abort_multipart_upload(
                    Bucket=self._s3.bucket, Key=self._object_key, UploadId=upload_id
                )
            except Exception as e:  # the sweep aborts it later
                if not _missing(e):
                    log.warning(
                        "could not abort upload of %s (a later sweep will): %s", self.key, e
                    )

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> S3Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            self.abort()


class S3Storage:
    """The `s3://` adapter."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        part_bytes: int = PART_BYTES,
        max_in_flight: int = MAX_IN_FLIGHT,
        read_chunk_bytes: int = READ_CHUNK_BYTES,
    ):
        if part_bytes < 5 << 20:
            raise ValueError("S3 parts must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}"
        self.client = client if client is not None else make_client(endpoint_url)
        self.part_bytes = part_bytes
        self.max_in_flight = max_in_flight
        self.read_chunk_bytes = read_chunk_bytes

    def object_key(self, key: str) -> str:
        if not key or "/" in key or "\0" in key:
            raise StorageError(f"not a valid export file key: {key!r}")
        return self.prefix + key

    def open_writer(self, key: str, attempt: int = 1) -> S3Writer:
        # the attempt needs no name of its own: each multipart upload has its own id
        return S3Writer(self, key)

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as e:
            if _missing(e):
                return None
            raise StorageError(f"cannot read {key} from {self.url}: {e}") from None
        return int(head["ContentLength"])

    def read(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        if length == 0:
            return iter(())
        span = f"bytes={start}-" if length is None else f"bytes={start}-{start + length - 1}"
        try:
            answer = self.client.get_object(
                Bucket=self.bucket, Key=self.object_key(key), Range=span
            )
        except Exception as e:
            if _missing(e):
                raise FileNotFoundError(key) from None
            code = getattr(e, "response", {}).get("Error", {}).get("Code")
            if code == "InvalidRange":  # starting at or past the end: nothing to send
                return iter(())
            raise StorageError(f"cannot read {key} from {self.url}: {e}") from None
        return self._chunks(answer["Body"])

    def _chunks(self, body: Any) -> Iterator[bytes]:
        # botocore checks the body against its Content-Length: a stream cut short raises
        # (IncompleteRead) rather than ending, so a short read never passes for a whole one.
        with contextlib.closing(body):
            while True:
                try:
                    chunk = body.read(self.read_chunk_bytes)
                except Exception as e:
                    raise StorageError(f"reading from {self.url} broke off: {e}") from e
                if not chunk:
                    return
                yield chunk

    def delete(self, key: str) -> bool:
        if self.size(key) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        return True

    def list(self, prefix: str = "") -> list[str]:
        keys = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if "/" not in name:
                    keys.append(name)
        return sorted(keys)

    def list_partials(self, prefix: str = "") -> list[Partial]:
        found = []
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                name = upload["Key"][len(self.prefix) :]
                found.append(Partial(name, upload["UploadId"], upload["Initiated"].timestamp()))
        return sorted(found, key=lambda p: (p.key, p.ref))

    def drop_partial(self, partial: Partial) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.object_key(partial.key), UploadId=partial.ref
            )
        except Exception as e:
            if not _missing(e):
                raise StorageError(f"could not abort upload of {partial.key}: {e}") from None

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            raise StorageError(f"bucket {self.bucket!r} cannot be reached: {e}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
