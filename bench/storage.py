"""Upload and download throughput to S3 (SeaweedFS): our adapter against plain boto3 transfers.

The reference is what `aws s3 cp` does: boto3's `upload_file` / `download_file` (threaded,
8 MiB parts, 10 at once). Ours streams: the writer takes 1 MiB blocks as an exporter produces
them, and downloads read one ranged stream as the HTTP route does. Same server, same file,
same run, best of `--repeat` for each side. Memory: Python's traced peak while our adapter
moves files of two sizes (flat means it does not grow with the size).

    .venv/bin/python bench/storage.py [--mib 256] [--repeat 3] [--small-mib 64]
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

from benchkit import best_seconds, make_parser, seaweedfs

from silverexport.storage.s3 import S3Storage

BLOCK = 1 << 20


def make_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    seed = os.urandom(BLOCK)
    with open(path, "wb") as f:
        for i in range(mib):
            block = seed[i % 997 :] + seed[: i % 997]  # varied, not compressible by chance
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


def ours_upload(storage: S3Storage, src: Path, key: str) -> None:
    writer = storage.open_writer(key)
    with open(src, "rb") as f:
        while block := f.read(BLOCK):
            writer.write(block)
    writer.commit()


def ours_download(storage: S3Storage, key: str, dst: Path) -> None:
    with open(dst, "wb") as f:
        for chunk in storage.read(key):
            f.write(chunk)


def sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--mib", type=int, default=256, help="file size in MiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--small-mib", type=int, help="the smaller file of the memory check (default: 64 or more)"
    )
    args = parser.parse_args()
    print(f"CPU cores: {os.cpu_count()}; file {args.mib} MiB; best of {args.repeat}")

    with seaweedfs() as (server, tmp_path):
        bucket = server.new_bucket()
        src = tmp_path / "src.bin"
        digest = make_file(src, args.mib)
        storage = S3Storage(bucket, "bench/", endpoint_url=server.endpoint_url)
        client = server.client()
        mb = args.mib * BLOCK / 1e6

        up_ours = best_seconds(lambda: ours_upload(storage, src, "ours.bin"), args.repeat)
        up_ref = best_seconds(
            lambda: client.upload_file(str(src), bucket, "bench/ref.bin"), args.repeat
        )
        dst = tmp_path / "dst.bin"
        down_ours = best_seconds(lambda: ours_download(storage, "ours.bin", dst), args.repeat)
        assert sha(dst) == digest, "our download differs from the source"
        down_ref = best_seconds(
            lambda: client.download_file(bucket, "bench/ref.bin", str(dst)), args.repeat
        )
        assert sha(dst) == digest, "boto3's download differs from the source"

        print(f"{'':10} {'ours MB/s':>10} {'boto3 MB/s':>11} {'ratio':>6}")
        for name, ours, ref in (("upload", up_ours, up_ref), ("download", down_ours, down_ref)):
            print(f"{name:10} {mb / ours:10.1f} {mb / ref:11.1f} {ref / ours:6.2f}")

        # Past the adapter's bound, (in flight + 2) parts of 8 MiB, unless told.
        small = args.small_mib or max(args.mib // 4, 64)
        small_src = tmp_path / "small.bin"
        make_file(small_src, small)
        for size, path in ((small, small_src), (args.mib, src)):
            up = traced_peak(lambda p=path: ours_upload(storage, p, "mem.bin"))
            down = traced_peak(lambda: ours_download(storage, "mem.bin", dst))
            print(
                f"traced peak, {size:4d} MiB file: upload {up / 2**20:5.1f} MiB, "
                f"download {down / 2**20:5.1f} MiB"
            )


if __name__ == "__main__":
    main()
