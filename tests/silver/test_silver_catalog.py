"""The catalog matches SPEC §2 and drives the schema."""

from __future__ import annotations

import pytest

from silverexport.errors import ValidationError
from silverexport.silver.catalog import DATASETS, ColumnKind, get_dataset
from silverexport.silver.store import SilverStore

SPEC = {
    "token_transfers": "id target_id network block_number block_time tx_hash log_index "
    "token_address token_symbol? from_address to_address amount direction?",
    "native_balance_deltas": "id target_id network block_number block_time tx_hash address "
    "delta balance_after?",
    "decoded_events": "id target_id network block_number block_time tx_hash log_index "
    "contract_address event_name decoded_fields",
    "hl_fills": "id target_id network time coin side px sz dir closed_pnl fee fee_token "
    "start_position crossed oid tid hash",
    "hl_funding": "id target_id network time coin usdc szi funding_rate",
    "positions": "id target_id network as_of coin size entry_px position_value unrealized_pnl "
    "leverage liquidation_px? margin_used",
}
_DECIMAL_NAMES = (
    "amount delta balance_after px sz closed_pnl fee start_position usdc szi funding_rate size "
    "entry_px position_value unrealized_pnl leverage liquidation_px margin_used"
)
DECIMALS = set(_DECIMAL_NAMES.split())
INTEGERS = {"id", "block_number", "log_index", "oid", "tid"}
TIMES = {"block_time", "time", "as_of"}


def test_columns_order_and_nullability_follow_the_spec():
    assert list(DATASETS) == list(SPEC)
    for name, spec in SPEC.items():
        ds = DATASETS[name]
        assert [c.name + ("?" if c.nullable else "") for c in ds.columns] == spec.split()
        assert ds.time_column in TIMES and ds.time_column in ds.column_names


def test_column_kinds_follow_the_spec():
    for ds in DATASETS.values():
        for c in ds.columns:
            if c.name in DECIMALS:
                assert c.kind is ColumnKind.DECIMAL
            elif c.name in INTEGERS:
                assert c.kind is ColumnKind.INTEGER
            elif c.name in TIMES:
                assert c.kind is ColumnKind.TIME
    assert get_dataset("hl_fills").column("crossed").kind is ColumnKind.BOOLEAN
    assert get_dataset("hl_fills").column("side").choices == ("B", "A")
    assert get_dataset("token_transfers").column("direction").choices == ("in", "out")
    assert get_dataset("decoded_events").column("decoded_fields").kind is ColumnKind.JSON_OBJECT


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(ValidationError) as e:
        get_dataset("nope")
    assert e.value.code == "unknown_dataset" and e.value.field == "dataset"
    assert "token_transfers, native_balance_deltas" in str(e.value)


def test_schema_has_every_column_and_filter_indexes(sqlite_store: SilverStore):
    store = sqlite_store
    for ds in DATASETS.values():
        cols = [r[1] for r in store.db.execute(f"PRAGMA table_info({ds.name})").fetchall()]
        assert cols[: len(ds.columns)] == list(ds.column_names)
        indexed = {
            store.db.execute(f"PRAGMA index_info({idx[1]})").fetchone()[2]
            for idx in store.db.execute(f"PRAGMA index_list({ds.name})").fetchall()
        }
        assert {"target_id", "network", ds.time_column} <= indexed


def test_reopening_a_store_keeps_its_rows(store_path, transfer):
    with SilverStore(store_path) as s:
        s.ingest("token_transfers", [transfer()])
    with SilverStore(store_path) as s:
        assert s.count("token_transfers") == 1
