"""`ingest` and `demo-data`: the commands that write the Silver store."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from ..errors import ValidationError
from ..silver.backends import open_silver_store
from ..silver.catalog import DATASETS, get_dataset
from ..silver.demo import generate
from .common import add_data_dir, settings_from

PROGRESS_MIN_BYTES = 8 * 1024 * 1024  # smaller files finish before a bar would help


def register(subparsers: argparse._SubParsersAction) -> None:
    ingest = subparsers.add_parser(
        "ingest",
        help="load JSON Lines rows into the Silver store (all or nothing)",
        description="Load JSON Lines rows (one object per line, keys = column names) into "
        "one dataset of the Silver store. A bad row rejects the whole file.",
    )
    ingest.add_argument("dataset", metavar="DATASET", help=f"one of: {', '.join(DATASETS)}")
    ingest.add_argument("file", metavar="FILE", help="a JSON Lines file, or - for stdin")
    add_data_dir(ingest)
    ingest.set_defaults(handler=run_ingest)

    demo = subparsers.add_parser(
        "demo-data",
        help="write a realistic synthetic Silver store",
        description="Add synthetic rows to every dataset: several targets and networks, "
        "awkward text, tiny and huge decimals, nulls.",
    )
    demo.add_argument("--rows", type=int, default=1000, help="rows per dataset (default 1000)")
    demo.add_argument("--seed", type=int, default=7, help="the same seed gives the same rows")
    add_data_dir(demo)
    demo.set_defaults(handler=run_demo_data)


def run_ingest(args: argparse.Namespace) -> int:
    dataset = get_dataset(args.dataset).name  # before creating a store for nothing
    settings = settings_from(args)
    with _open_input(args.file) as source, open_silver_store(settings) as store:
        size = _size_of(source)
        # A bar only for big (or unknown-size) input, and, as tqdm's None means, on a terminal.
        quiet = size is not None and size < PROGRESS_MIN_BYTES
        bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc="ingest",
            file=sys.stderr,
            disable=True if quiet else None,
        )
        with bar:
            rows = store.ingest_jsonl(
                dataset, source, progress=lambda consumed: bar.update(consumed - bar.n)
            )
    print(f"ingested {rows} rows into {dataset}")
    return 0


def run_demo_data(args: argparse.Namespace) -> int:
    if args.rows < 0:
        print("silverexport: error: --rows must not be negative", file=sys.stderr)
        return 2
    settings = settings_from(args)
    with open_silver_store(settings) as store:
        counts = generate(store, args.rows, seed=args.seed)
    for name, count in counts.items():
        print(f"{name}: {count} rows")
    print(f"Silver store: {store.location}")
    return 0


class _Stdin:
    """stdin's bytes as a context manager that does not close the real stdin."""

    def __enter__(self) -> BinaryIO:
        return sys.stdin.buffer

    def __exit__(self, *exc: object) -> None:
        return None


def _open_input(name: str) -> BinaryIO | _Stdin:
    if name == "-":
        return _Stdin()
    try:
        return Path(name).open("rb")
    except OSError as e:
        raise ValidationError(f"cannot read {name}: {e.strerror or e}", field="file") from e


def _size_of(source: BinaryIO) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size or None
    except (OSError, ValueError):
        return None
