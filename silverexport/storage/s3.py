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

from ..errors import ExportStorageError
from .failure import failure, masked, why
from .port import READ_CHUNK_BYTES, Partial

log = logging.getLogger(__name__)

PART_BYTES = 8 << 20  # S3's floor is 5 MiB for every part but the last
MAX_IN_FLIGHT = 4
# The health probe's client: one try, and a store that does not answer within this many
# seconds counts as down (the data client retries and waits far longer, as a transfer should).
PROBE_SECONDS = 2.0


def make_client(endpoint_url: str | None, max_connections: int = 16, *, probe: bool = False) -> Any:
    """A boto3 client; a malformed endpoint is an ExportStorageError naming its setting."""
    import boto3
    from botocore.config import Config

    waits: dict[str, Any] = (
        {
            "connect_timeout": PROBE_SECONDS,
            "read_timeout": PROBE_SECONDS,
            "retries": {"mode": "standard", "max_attempts": 1},
        }
        if probe
        else {"connect_timeout": 10, "retries": {"mode": "standard", "max_attempts": 5}}
    )
    config = Config(
        max_pool_connections=max_connections,
        # path style: S3-compatible servers on a plain host:port have no bucket subdomains
        s3={"addressing_style": "path"} if endpoint_url else {},
        **waits,
    )
    try:
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, config=config
        )
    except Exception as e:
        raise ExportStorageError(
            f"SILVEREXPORT_S3_ENDPOINT_URL ({masked(endpoint_url or '')}): {why(e)}"
        ) from None


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
            raise ExportStorageError(f"writer for {self.key} is already closed")
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
            try:
                made = client.create_multipart_upload(Bucket=bucket, Key=self._object_key)
            except Exception as e:
                raise failure(self._s3.url, f"start the upload of {self.key}", e) from e
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
                error = f.exception()
                assert error is not None
                raise failure(self._s3.url, f"upload {self.key}", error)

    def commit(self) -> None:
        if self._closed:
            raise ExportStorageError(f"writer for {self.key} is already closed")
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
        except BaseException as e:
            self.abort()
            if isinstance(e, Exception):
                raise failure(self._s3.url, f"finish the upload of {self.key}", e) from e
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
    """The `s3://` adapter. Whatever boto3 raises (an endpoint out of reach, a bucket gone, a
    refused request) leaves as an ExportStorageError naming the store and what failed; a
    missing object is None, False or FileNotFoundError, as the port says."""

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
        self.endpoint_url = endpoint_url
        self.client = client if client is not None else make_client(endpoint_url)
        self._given_client = client is not None
        self._probe_client: Any = None
        self._probe_lock = threading.Lock()
        self.part_bytes = part_bytes
        self.max_in_flight = max_in_flight
        self.read_chunk_bytes = read_chunk_bytes

    def object_key(self, key: str) -> str:
        if not key or "/" in key or "\0" in key:
            raise ExportStorageError(f"not a valid export file key: {key!r}")
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
            raise failure(self.url, f"read {key}", e) from None
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
            raise failure(self.url, f"read {key}", e) from None
        return self._chunks(answer["Body"], key)

    def _chunks(self, body: Any, key: str) -> Iterator[bytes]:
        # botocore checks the body against its Content-Length: a stream cut short raises
        # (IncompleteRead) rather than ending, so a short read never passes for a whole one.
        with contextlib.closing(body):
            while True:
                try:
                    chunk = body.read(self.read_chunk_bytes)
                except Exception as e:
                    raise failure(self.url, f"read {key} to its end", e) from e
                if not chunk:
                    return
                yield chunk

    def delete(self, key: str) -> bool:
        if self.size(key) is None:
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as e:
            raise failure(self.url, f"delete {key}", e) from None
        return True

    def _pages(self, operation: str, prefix: str, doing: str) -> list[dict[str, Any]]:
        try:
            paginator = self.client.get_paginator(operation)
            return list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix))
        except Exception as e:
            raise failure(self.url, doing, e) from None

    def list(self, prefix: str = "") -> list[str]:
        keys = []
        for page in self._pages("list_objects_v2", prefix, "list its files"):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if "/" not in name:
                    keys.append(name)
        return sorted(keys)

    def list_partials(self, prefix: str = "") -> list[Partial]:
        found = []
        for page in self._pages("list_multipart_uploads", prefix, "list the uploads"):
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
                raise failure(self.url, f"abort the upload of {partial.key}", e) from None

    def check(self) -> None:
        """HEAD the bucket, once, through a client of its own that waits PROBE_SECONDS at
        most: cheap enough for /healthz, and no retries that would keep a probe waiting."""
        try:
            self._prober().head_bucket(Bucket=self.bucket)
        except Exception as e:
            raise ExportStorageError(
                f"bucket {self.bucket!r} cannot be reached: {why(e)}"
            ) from None

    def _prober(self) -> Any:
        if self._given_client:
            return self.client
        with self._probe_lock:
            if self._probe_client is None:
                self._probe_client = make_client(self.endpoint_url, 2, probe=True)
            return self._probe_client

    def close(self) -> None:
        for client in (self.client, self._probe_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
