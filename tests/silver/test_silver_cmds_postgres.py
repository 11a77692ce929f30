"""The commands that write the Silver store, with SILVEREXPORT_SILVER_URL naming PostgreSQL:
`ingest` (all or nothing, the same messages), `demo-data`, and `export`, as real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from silverexport.silver.postgres_store import PostgresSilverStore


def cli(tmp_path: Path, url: str, *argv: str, stdin: bytes | None = None):
    env = {**os.environ, "SILVEREXPORT_SILVER_URL": url, "SILVEREXPORT_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "silverexport", *argv],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_ingest_demo_data_and_export_on_postgres(tmp_path, postgres_url, fill):
    good = "".join(json.dumps(fill(side=s)) + "\n" for s in "BA").encode()
    done = cli(tmp_path, postgres_url, "ingest", "hl_fills", "-", stdin=good)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"ingested 2 rows into hl_fills\n"

    bad = good + json.dumps(fill(px=1.5)).encode() + b"\n"
    done = cli(tmp_path, postgres_url, "ingest", "hl_fills", "-", stdin=bad)
    assert done.returncode != 0
    assert b'line 3, column "px": 1.5 is a JSON float' in done.stderr

    done = cli(tmp_path, postgres_url, "demo-data", "--rows", "20")
    assert done.returncode == 0, done.stderr
    assert b"Silver store: postgresql://postgres:***@" in done.stdout
    with PostgresSilverStore(postgres_url) as store:
        assert store.count("hl_fills") == 22 and store.count("positions") == 20
    assert not (tmp_path / "silver.db").exists()

    out = tmp_path / "fills.csv"
    done = cli(tmp_path, postgres_url, "export", "hl_fills", "--format", "csv", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().count(b"\r\n") == 23


def test_an_unreachable_silver_database_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://me:hunter2-secret@127.0.0.1:{port}/silver"
    for argv in (["ingest", "hl_fills", "-"], ["export", "hl_fills", "--format", "csv"]):
        done = cli(tmp_path, url, *argv, stdin=b"")
        lines = done.stderr.decode().strip().splitlines()
        assert done.returncode != 0
        assert len(lines) == 1 and "SILVEREXPORT_SILVER_URL" in lines[0], lines
        assert "hunter2" not in done.stderr.decode() + done.stdout.decode()
