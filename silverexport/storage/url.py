"""SILVEREXPORT_STORAGE_URL: which store holds export files, read and checked in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

SETTING = "SILVEREXPORT_STORAGE_URL"

# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alnum.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class StorageUrlError(ValueError):
    """A storage URL that cannot be used; the message names the setting."""


@dataclass(frozen=True, slots=True)
class LocalTarget:
    directory: Path


@dataclass(frozen=True, slots=True)
class S3Target:
    bucket: str
    prefix: str  # "" or ending in "/"


def parse(url: str, data_dir: Path) -> LocalTarget | S3Target:
    """`""` → the data dir's exports/; `file:///dir`; `s3://bucket/prefix`."""
    if url == "":
        return LocalTarget(data_dir / "exports")
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise StorageUrlError(
            f"{SETTING} must not hold credentials (S3 takes them from AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY)"
        )
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageUrlError(f"{SETTING} must be file:///absolute/dir (no host), got {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/") or parts.query or parts.fragment:
            raise StorageUrlError(f"{SETTING} must be file:///absolute/dir, got {url!r}")
        return LocalTarget(Path(path))
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise StorageUrlError(
                f"{SETTING} must be s3://bucket/prefix with a valid bucket name, got {url!r}"
            )
        if parts.query or parts.fragment:
            raise StorageUrlError(f"{SETTING} must be s3://bucket/prefix, got {url!r}")
        prefix = parts.path.strip("/")
        return S3Target(bucket, prefix + "/" if prefix else "")
    raise StorageUrlError(
        f"{SETTING} must start with file:// or s3://, got {url.split('://')[0]!r}"
        if "://" in url
        else f"{SETTING} must be a file:// or s3:// URL, got {url!r}"
    )
