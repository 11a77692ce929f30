"""A job's file as the store holds it, read through the storage port (file:// or s3://).

Tests about exports and downloads in general read files this way, not from a local path, so
that they also run with the files in S3 (STORAGE_BACKEND=s3).
"""

from __future__ import annotations

from silverexport.model import JobView
from silverexport.system import ExportSystem


def stored_bytes(system: ExportSystem, view: JobView) -> bytes:
    return b"".join(system.file_chunks(view))
