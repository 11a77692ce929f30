"""What every subcommand shares: the --data-dir flag and turning flags into Settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Settings


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the Silver store, event log and export files live "
        "(SILVEREXPORT_DATA_DIR, default ./data)",
    )


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    return Settings.from_env(data_dir=getattr(args, "data_dir", None), **overrides)
