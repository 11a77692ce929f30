"""The same rows give the same bytes on either Silver backend (SPEC §8), and the choice of
backend is made from SILVEREXPORT_SILVER_URL with one-line errors.

Hostile text (quotes, commas, CR/LF, tabs, control characters, backslashes, Unicode beyond
the BMP), `-0`, trailing zeros, 39-digit decimals, nulls beside empty strings, and numbers
inside decoded_fields are ingested into a SQLite store and a PostgreSQL store; every format
(and gzip) is exported from both, with and without filters and limits, and the files compared
byte for byte. Rows that another program writes into PostgreSQL with SQL export the same
bytes as the same rows ingested into SQLite.
"""

from __future__ import annotations

import itertools
import socket
from pathlib import Path
from typing import Any

import psycopg
import pytest

from silverexport.config import Settings
from silverexport.errors import StorageError, ValidationError
from silverexport.silver.backends import open_silver_store
from silverexport.silver.catalog import DATASETS
from silverexport.silver.demo import rows_for
from silverexport.silver.postgres_store import PostgresSilverStore
from silverexport.silver.store import SilverStore
from silverexport.silver.writers import Filters, export_to_file, iter_wallet_export

HOSTILE = [
    'a,b"c',
    "line one\nline two",
    "cr\r\nlf\r",
    'é "quoted" \\ back\tslash \x01\x1f \u2028 \U0001f600',
    "",
    " lead and trail ",
    "\\N",
    "null",
    "=1+2",
]
DECIMALS = ["-0", "1.500", "0.000000000000000001", "-0.0", "123456789012345678901234567890.5"]
WIDE = "1" * 39 + ".25"  # more than 38 digits: Parquet keeps it as text
WALLET = "0x" + "AbCd" * 10


def hostile_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows for every dataset: demo rows, then rows with the awkward values above."""
    rows = {name: list(rows_for(name, 40, seed=11)) for name in DATASETS}
    texts = itertools.cycle(HOSTILE)
    decimals = itertools.cycle([*DECIMALS, WIDE])
    for i in range(len(HOSTILE) * 2):
        t = "2024-01-01T00:00:00.000Z" if i % 3 else f"2024-01-01T00:00:{i:02d}.123456Z"
        rows["token_transfers"].append(
            {
                "target_id": next(texts) or "t",
                "network": "eth" if i % 2 else "arb",
                "block_number": i,
                "block_time": t,
                "tx_hash": next(texts),
                "log_index": -i,
                "token_address": next(texts),
                "token_symbol": None if i % 4 == 0 else next(texts),
                "from_address": WALLET if i % 5 == 0 else next(texts),
                "to_address": WALLET.lower() if i % 5 == 1 else next(texts),
                "amount": next(decimals),
                "direction": None if i % 2 else "out",
            }
        )
        rows["decoded_events"].append(
            {
                "target_id": "t1",
                "network": "eth",
                "block_number": i,
                "block_time": t,
                "tx_hash": next(texts),
                "log_index": i,
                "contract_address": next(texts),
                "event_name": next(texts),
                "decoded_fields": {
                    "text": next(texts),
                    "n": [next(decimals), 0, -1, None, True],
                    next(texts) or "k": {"deep": next(texts)},
                },
            }
        )
        rows["positions"].append(
            {
                "target_id": "t2",
                "network": "hyperliquid",
                "as_of": 1704067200000 + i,
                "coin": next(texts),
                "size": next(decimals),
                "entry_px": next(decimals),
                "position_value": next(decimals),
                "unrealized_pnl": next(decimals),
                "leverage": "3",
                "liquidation_px": None if i % 2 else next(decimals),
                "margin_used": next(decimals),
            }
        )
    return rows


@pytest.fixture(scope="module")
def both(tmp_path_factory, postgres_server):
    """A SQLite and a PostgreSQL store holding the same hostile rows."""
    name = postgres_server.fresh_database()
    rows = hostile_rows()
    path = tmp_path_factory.mktemp("silver") / "silver.db"
    with SilverStore(path) as lite, PostgresSilverStore(postgres_server.url(name)) as pg:
        for dataset, batch in rows.items():
            assert lite.ingest(dataset, batch) == pg.ingest(dataset, batch) == len(batch)
        yield lite, pg
    postgres_server.drop_database(name)


def exports(store: Any, dataset: str, out: Path, **options: Any) -> dict[str, Any]:
    """Every format's file bytes and result, from `store`."""
    found = {}
    for fmt, compression in [
        ("csv", None),
        ("jsonl", None),
        ("parquet", None),
        ("csv", "gzip"),
        ("jsonl", "gzip"),
    ]:
        path = out / f"{dataset}.{fmt}.{compression}"
        result = export_to_file(
            store, dataset, fmt, path, compression=compression, batch_size=7, **options
        )
        found[path.name] = (path.read_bytes(), result)
    return found


CASES = [
    {"limit": 1000},
    {"limit": 5},  # truncated
    {"limit": 1000, "filters": Filters(target_id="t1")},
    {"limit": 1000, "filters": Filters(network="eth", from_="2024-01-01T00:00:01.000Z")},
    {"limit": 1000, "filters": Filters(to="2024-01-01T00:00:00.500Z")},
    {"limit": 1000, "filters": Filters(target_id="no such target")},  # no rows
]


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_every_format_is_byte_identical_on_both_backends(both, tmp_path, dataset, case):
    lite, pg = both
    (tmp_path / "lite").mkdir()
    (tmp_path / "pg").mkdir()
    want = exports(lite, dataset, tmp_path / "lite", **CASES[case])
    got = exports(pg, dataset, tmp_path / "pg", **CASES[case])
    assert got.keys() == want.keys()
    for name in want:
        assert got[name][1] == want[name][1], name  # rows, bytes, sha256, truncated
        assert got[name][0] == want[name][0], name
    if case == 0:
        assert want[f"{dataset}.csv.None"][1].rows >= 40
    if case == 1:
        assert all(result.truncated for _, result in want.values())


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_wallet_export_is_byte_identical(both, fmt):
    lite, pg = both
    want = b"".join(iter_wallet_export(lite, WALLET, fmt, max_records=1000))
    assert want.count(b"\n") > 3
    assert b"".join(iter_wallet_export(pg, WALLET, fmt, max_records=1000)) == want
    bounded = b"".join(
        iter_wallet_export(pg, WALLET.upper().replace("0X", "0x"), fmt, max_records=2)
    )
    assert bounded == b"".join(iter_wallet_export(lite, WALLET, fmt, max_records=2))


def test_rows_written_with_sql_into_postgres_export_as_if_ingested(tmp_path, postgres_url):
    """Another program INSERTs rows (no id: the database assigns it) and UPDATEs one to loose
    JSON; the files equal those of the same rows ingested into SQLite."""
    rows = hostile_rows()["decoded_events"][-12:]
    with SilverStore(tmp_path / "silver.db") as lite, PostgresSilverStore(postgres_url) as pg:
        lite.ingest("decoded_events", rows)
        stored = [
            r
            for r in lite.db.execute(
                "SELECT target_id, network, block_number, block_time, tx_hash, log_index, "
                "contract_address, event_name, decoded_fields FROM decoded_events ORDER BY id"
            ).fetchall()
        ]
        loose = '{"a" : 1E+2,\n "b": [-0, 0.10, 1e400], "c": "x,\\"y\\" \\n"}'
        with psycopg.connect(postgres_url) as conn:
            for values in stored:
                conn.execute(
                    "INSERT INTO decoded_events (target_id, network, block_number, block_time, "
                    "tx_hash, log_index, contract_address, event_name, decoded_fields) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    values,
                )
            conn.execute("UPDATE decoded_events SET decoded_fields = %s WHERE id = 3", [loose])
            conn.execute("DELETE FROM decoded_events WHERE id = 5")
        with lite.db:
            lite.db.execute("UPDATE decoded_events SET decoded_fields = ? WHERE id = 3", [loose])
            lite.db.execute("DELETE FROM decoded_events WHERE id = 5")
        (tmp_path / "lite").mkdir()
        (tmp_path / "pg").mkdir()
        want = exports(lite, "decoded_events", tmp_path / "lite", limit=100)
        got = exports(pg, "decoded_events", tmp_path / "pg", limit=100)
    assert b'"a":1E+2,"b":[-0,0.10,1e400]' in want["decoded_events.jsonl.None"][0]
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in want.items()}


def test_postgres_checks_the_stored_text_too(postgres_url):
    """The database itself refuses what ingest would: a NUMERIC-style `1e5`, a loose time."""
    with PostgresSilverStore(postgres_url):
        pass
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for column, value in [("px", "1e5"), ("time", "2024-01-01 00:00:00")]:
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(
                    "INSERT INTO hl_fills (target_id, network, time, coin, side, px, sz, dir, "
                    "closed_pnl, fee, fee_token, start_position, crossed, oid, tid, hash) VALUES "
                    "('t', 'n', %(time)s, 'BTC', 'B', %(px)s, '1', 'd', '0', '0', 'U', '0', "
                    "true, 1, 2, 'h')",
                    {"time": "2024-01-01T00:00:00.000Z", "px": "1", column: value},
                )


def test_postgres_refuses_nul_naming_line_and_column(postgres_url, transfer):
    with PostgresSilverStore(postgres_url) as pg:
        pg.ingest("token_transfers", [transfer()])
        with pytest.raises(ValidationError, match=r'^line 3, column "tx_hash": .*U\+0000'):
            pg.ingest("token_transfers", [transfer(), transfer(), transfer(tx_hash="a\x00")])
        assert pg.count("token_transfers") == 1


def test_a_late_error_in_a_later_copy_chunk_writes_nothing(postgres_url, transfer):
    with PostgresSilverStore(postgres_url) as pg:
        rows = [transfer(id=i + 1) for i in range(25_000)] + [transfer(id=7)]
        with pytest.raises(ValidationError, match=r'^line 25001, column "id": id 7 is already'):
            pg.ingest("token_transfers", rows)
        assert pg.count("token_transfers") == 0


# -- choosing the backend --------------------------------------------------------------------


def test_the_default_is_silver_db_under_the_data_dir(tmp_path):
    with open_silver_store(Settings(data_dir=tmp_path)) as store:
        assert isinstance(store, SilverStore) and store.path == tmp_path / "silver.db"


def test_a_postgres_url_selects_postgres(tmp_path, postgres_url):
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        settings = Settings.from_env({"SILVEREXPORT_SILVER_URL": url}, data_dir=tmp_path)
        with open_silver_store(settings) as store:
            assert isinstance(store, PostgresSilverStore)
            assert "***" in store.location and "s3cret" not in store.location
    assert not (tmp_path / "silver.db").exists()


@pytest.mark.parametrize("url", ["mysql://u:pw@h/db", "postgresql://u:pw@/db", "sqlite:///x"])
def test_a_bad_url_names_the_setting(url):
    with pytest.raises(ValidationError, match=r"^SILVEREXPORT_SILVER_URL ") as e:
        Settings.from_env({"SILVEREXPORT_SILVER_URL": url})
    assert "pw" not in str(e.value) and "\n" not in str(e.value)


def test_an_unreachable_database_is_one_line_without_the_password():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    url = f"postgresql://me:hunter2-secret@127.0.0.1:{port}/silver"
    with pytest.raises(StorageError) as e:
        open_silver_store(Settings(silver_url=url))
    message = str(e.value)
    assert message.startswith("SILVEREXPORT_SILVER_URL: ") and "\n" not in message
    assert "hunter2" not in message


def test_a_postgres_mask_of_an_older_expression_is_recomputed_on_open(postgres_url, transfer):
    """A table whose generated mask another (older) expression computes would render wrongly;
    opening the store recomputes it, and the rows export exactly."""
    with PostgresSilverStore(postgres_url) as pg:
        pg.ingest("token_transfers", [transfer(id=1, token_symbol='a,b"c')])
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE token_transfers DROP COLUMN _escape_mask")
        conn.execute(
            "ALTER TABLE token_transfers ADD COLUMN _escape_mask BIGINT "
            "GENERATED ALWAYS AS (0) STORED"  # "nothing to quote": wrong for this row
        )
    with PostgresSilverStore(postgres_url) as pg:
        data = b"".join(pg.iter_wallet(transfer()["from_address"], "csv", max_records=5))
        assert b',"a,b""c",' in data
    with PostgresSilverStore(postgres_url) as pg:  # a second open changes nothing
        assert pg.count("token_transfers") == 1


def test_opening_an_up_to_date_store_waits_on_no_table_lock(postgres_url, transfer):
    """A node that starts while another holds a table for a long ingest must not wait."""
    with PostgresSilverStore(postgres_url):
        pass
    with psycopg.connect(postgres_url) as holder:
        holder.execute("LOCK TABLE token_transfers IN ACCESS EXCLUSIVE MODE")
        with PostgresSilverStore(postgres_url) as store:
            assert store.location.endswith(postgres_url.rsplit("/", 1)[1])
        holder.rollback()


def test_postgres_ingest_reconnects_after_its_connection_is_dropped(postgres_url, transfer):
    with PostgresSilverStore(postgres_url) as pg:
        pg.ingest("token_transfers", [transfer()])
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StorageError, match="could not"):
            pg.count("token_transfers")  # the dropped connection, found out
        assert pg.ingest("token_transfers", [transfer()]) == 1
        assert pg.count("token_transfers") == 2
