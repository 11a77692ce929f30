"""Where export files live: one interface (`ExportStorage`), a directory and an S3 adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

from .local import LocalStorage
from .port import ExportStorage, ExportStorageError, ExportWriter, Partial
from .url import SETTING, LocalTarget, S3Target, StorageUrlError, parse

__all__ = [
    "ExportStorage",
    "ExportStorageError",
    "ExportWriter",
    "LocalStorage",
    "Partial",
    "StorageUrlError",
    "open_storage",
    "stream_range",
    "sweep_partials",
]


def open_storage(url: str, data_dir: Path, endpoint_url: str = "") -> ExportStorage:
    """The store SILVEREXPORT_STORAGE_URL names (raises StorageUrlError if it is malformed)."""
    target = parse(url, data_dir)
    if isinstance(target, LocalTarget):
        return LocalStorage(target.directory)
    assert isinstance(target, S3Target)
    from .s3 import S3Storage

    return S3Storage(target.bucket, target.prefix, endpoint_url=endpoint_url or None)


def check_at_start(storage: ExportStorage) -> None:
    """Exit-at-start check: the message names the setting, never a secret."""
    try:
        storage.check()
    except ExportStorageError as e:
        raise ExportStorageError(f"{SETTING} ({storage.url}): {e}") from None


async def stream_range(
    storage: ExportStorage, key: str, start: int = 0, length: int | None = None
) -> AsyncIterator[bytes]:
    """`storage.read` for the event loop: every blocking call runs in the default executor."""
    import asyncio  # here: commands that never serve do not import it

    loop = asyncio.get_running_loop()
    chunks = await loop.run_in_executor(None, storage.read, key, start, length)
    done = object()
    try:
        while (chunk := await loop.run_in_executor(None, next, chunks, done)) is not done:
            yield chunk  # type: ignore[misc]
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await loop.run_in_executor(None, close)


def sweep_partials(storage: ExportStorage, is_over: Callable[[str], bool]) -> int:
    """Drop the partials whose key belongs to a job that is over (by the caller's views);
    a partial of a job still running is that job's own write and stays. Returns how many."""
    dropped = 0
    for partial in storage.list_partials():
        if is_over(partial.key):
            try:
                storage.drop_partial(partial)
                dropped += 1
            except ExportStorageError:
                continue  # the next sweep retries
    return dropped
