"""The Silver store (source data) and the exact, streaming JSONL/CSV/Parquet writers."""

from .catalog import DATASETS, Column, ColumnKind, Dataset, get_dataset
from .store import SilverStore
from .writers import ExportCancelled, ExportResult, Filters, export_to_file, iter_wallet_export

__all__ = [
    "DATASETS",
    "Column",
    "ColumnKind",
    "Dataset",
    "ExportCancelled",
    "ExportResult",
    "Filters",
    "SilverStore",
    "export_to_file",
    "get_dataset",
    "iter_wallet_export",
]
