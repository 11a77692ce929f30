"""`ingest` and `demo-data`, driven through the argparse wiring that `register` sets up."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from silverexport.commands import silver_cmds
from silverexport.errors import ValidationError
from silverexport.silver.catalog import DATASETS
from silverexport.silver.demo import rows_for
from silverexport.silver.store import SilverStore

# The same wiring as `silverexport`'s main, limited to this module's commands (runs in a
# subprocess for the stdin test, so that it reads a real pipe).
DRIVER = """
import argparse, sys
from silverexport.commands import silver_cmds
from silverexport.errors import SilverExportError
parser = argparse.ArgumentParser(prog="silverexport")
silver_cmds.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args()
try:
    sys.exit(args.handler(args))
except SilverExportError as e:
    print(f"silverexport: error: {e}", file=sys.stderr)
    sys.exit(2)
"""


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="silverexport")
    silver_cmds.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def count(data_dir: Path, dataset: str) -> int:
    with SilverStore(data_dir / "silver.db") as store:
        return store.count(dataset)


def test_ingest_a_good_file(tmp_path, capsys, fill):
    source = write_jsonl(tmp_path / "fills.jsonl", [fill(), fill(side="A")])
    assert run("ingest", "hl_fills", str(source), "--data-dir", str(tmp_path)) == 0
    assert capsys.readouterr().out == "ingested 2 rows into hl_fills\n"
    assert count(tmp_path, "hl_fills") == 2


def test_ingest_a_bad_file_writes_nothing(tmp_path, fill):
    source = write_jsonl(tmp_path / "fills.jsonl", [fill(), fill(px=1.5)])
    with pytest.raises(ValidationError, match=r'^line 2, column "px": 1\.5 is a JSON float'):
        run("ingest", "hl_fills", str(source), "--data-dir", str(tmp_path))
    assert count(tmp_path, "hl_fills") == 0


def test_ingest_a_missing_file_or_dataset(tmp_path):
    with pytest.raises(ValidationError, match="cannot read"):
        run("ingest", "hl_fills", str(tmp_path / "nope.jsonl"), "--data-dir", str(tmp_path))
    with pytest.raises(ValidationError, match="valid datasets"):
        run("ingest", "nope", str(tmp_path / "nope.jsonl"), "--data-dir", str(tmp_path))
    assert not (tmp_path / "silver.db").exists()


def test_ingest_from_stdin(tmp_path, fill):
    data = "".join(json.dumps(fill()) + "\n" for _ in range(3))
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "ingest", "hl_fills", "-", "--data-dir", str(tmp_path)],
        input=data.encode(),
        capture_output=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, b"ingested 3 rows into hl_fills\n")
    assert count(tmp_path, "hl_fills") == 3


def test_ingest_error_from_stdin_is_one_clear_line(tmp_path, fill):
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "ingest", "hl_fills", "-", "--data-dir", str(tmp_path)],
        input=(json.dumps(fill()) + "\n{oops\n").encode(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().startswith("silverexport: error: line 2: not valid JSON")
    assert count(tmp_path, "hl_fills") == 0


def test_demo_data_fills_every_dataset(tmp_path, capsys):
    assert run("demo-data", "--rows", "50", "--data-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    for name in DATASETS:
        assert f"{name}: 50 rows" in out
        assert count(tmp_path, name) == 50


def test_demo_data_is_deterministic_and_varied():
    first = list(rows_for("token_transfers", 300, seed=3))
    assert first == list(rows_for("token_transfers", 300, seed=3))
    assert first != list(rows_for("token_transfers", 300, seed=4))
    assert len({r["target_id"] for r in first}) > 1 and len({r["network"] for r in first}) > 1
    symbols = [r["token_symbol"] for r in first]
    assert None in symbols and any(s and "," in s for s in symbols)
    assert any(s and "\n" in s for s in symbols) and any(s and not s.isascii() for s in symbols)
    amounts = [r["amount"] for r in first]
    assert any(len(a) > 25 for a in amounts) and any(a.startswith("0.0000000000") for a in amounts)
