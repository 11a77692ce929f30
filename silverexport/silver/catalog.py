"""The six Silver datasets of SPEC §2: the one definition that schema, ingest and export share."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..errors import ValidationError, quoted


class ColumnKind(StrEnum):
    """How a column is checked on ingest, stored, and rendered on export."""

    INTEGER = "integer"
    DECIMAL = "decimal"  # exact decimal text, never a float
    TIME = "time"  # canonical UTC text, which sorts as time
    BOOLEAN = "boolean"  # stored 0/1, exported true/false
    JSON_OBJECT = "json_object"  # stored as compact JSON text
    TEXT = "text"
    CHOICE = "choice"  # text limited to `Column.choices`

    @property
    def sql_type(self) -> str:
        return "INTEGER" if self in (ColumnKind.INTEGER, ColumnKind.BOOLEAN) else "TEXT"

    @property
    def free_text(self) -> bool:
        """Values may hold any character, so CSV may need to quote and JSON to escape them."""
        return self in (ColumnKind.TEXT, ColumnKind.JSON_OBJECT)


# target_id and network: what a filter can select (SPEC §2), so ingest holds rows to it too.
KEY_MAX_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: ColumnKind
    nullable: bool = False
    choices: tuple[str, ...] = ()
    max_length: int | None = None  # text of 1 to max_length characters (a filter key)


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    columns: tuple[Column, ...]
    time_column: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _cols(spec: str) -> tuple[Column, ...]:
    """Parse `name:kind[?]` words: a compact table that reads like SPEC §2 (`?` = nullable)."""
    kinds = {
        "key": ColumnKind.TEXT,  # with KEY_MAX_LENGTH
        "int": ColumnKind.INTEGER,
        "dec": ColumnKind.DECIMAL,
        "time": ColumnKind.TIME,
        "bool": ColumnKind.BOOLEAN,
        "json": ColumnKind.JSON_OBJECT,
        "text": ColumnKind.TEXT,
    }
    columns = []
    for word in spec.split():
        name, _, kind = word.partition(":")
        nullable = kind.endswith("?")
        kind = kind.rstrip("?")
        if kind.startswith("choice="):
            columns.append(Column(name, ColumnKind.CHOICE, nullable, tuple(kind[7:].split("|"))))
        else:
            bound = KEY_MAX_LENGTH if kind == "key" else None
            columns.append(Column(name, kinds[kind], nullable, max_length=bound))
    return tuple(columns)


_HEAD = "id:int target_id:key network:key"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "token_transfers",
            _cols(
                f"{_HEAD} block_number:int block_time:time tx_hash:text log_index:int "
                "token_address:text token_symbol:text? from_address:text to_address:text "
                "amount:dec direction:choice=in|out?"
            ),
            "block_time",
        ),
        Dataset(
            "native_balance_deltas",
            _cols(
                f"{_HEAD} block_number:int block_time:time tx_hash:text address:text "
                "delta:dec balance_after:dec?"
            ),
            "block_time",
        ),
        Dataset(
            "decoded_events",
            _cols(
                f"{_HEAD} block_number:int block_time:time tx_hash:text log_index:int "
                "contract_address:text event_name:text decoded_fields:json"
            ),
            "block_time",
        ),
        Dataset(
            "hl_fills",
            _cols(
                f"{_HEAD} time:time coin:text side:choice=B|A px:dec sz:dec dir:text "
                "closed_pnl:dec fee:dec fee_token:text start_position:dec crossed:bool "
                "oid:int tid:int hash:text"
            ),
            "time",
        ),
        Dataset(
            "hl_funding",
            _cols(f"{_HEAD} time:time coin:text usdc:dec szi:dec funding_rate:dec"),
            "time",
        ),
        Dataset(
            "positions",
            _cols(
                f"{_HEAD} as_of:time coin:text size:dec entry_px:dec position_value:dec "
                "unrealized_pnl:dec leverage:dec liquidation_px:dec? margin_used:dec"
            ),
            "as_of",
        ),
    )
}


def get_dataset(name: str) -> Dataset:
    """The dataset called `name`, or a ValidationError that lists the valid ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValidationError(
            f"unknown dataset {quoted(name)}; valid datasets: {', '.join(DATASETS)}",
            field="dataset",
            code="unknown_dataset",
        ) from None
