"""The README is checked: its embedding example runs, and it documents every command and route."""

from __future__ import annotations

import re
from pathlib import Path

from silverexport import ExportSystem, JobStatus, make_app
from silverexport.__main__ import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_embedding_example_runs(tmp_path, monkeypatch):
    (example,) = python_blocks(README)
    monkeypatch.chdir(tmp_path)
    with ExportSystem.open(data_dir="data") as system:  # the example exports hl_fills of t1
        system.store.ingest("hl_fills", [])
    rows = [
        {
            "target_id": "t1",
            "network": "hyperliquid",
            "time": "2025-01-01T00:00:00Z",
            "coin": "BTC",
            "side": "B",
            "px": "97000.5",
            "sz": "0.001",
            "dir": "Open Long",
            "closed_pnl": "0",
            "fee": "0.0421",
            "fee_token": "USDC",
            "start_position": "0",
            "crossed": True,
            "oid": 1,
            "tid": 2,
            "hash": "0x" + "ab" * 32,
        }
    ]
    namespace: dict = {"rows": rows}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["done"].status is JobStatus.COMPLETED
    with ExportSystem.open(data_dir="data", run_jobs=False) as system:
        assert system.store.count("hl_fills") == 1


def test_every_command_is_documented():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    for name in sub.choices:
        assert f"silverexport {name}" in README, f"README does not show `silverexport {name}`"


def test_every_route_is_documented(tmp_path):
    with ExportSystem.open(tmp_path / "data", run_jobs=False) as system:
        app = make_app(system)
        paths = {
            r.resource.canonical
            for r in app.router.routes()
            if r.method != "HEAD" and r.resource is not None
        }
    for path in paths:
        assert f"`{path}`" in README or f" {path}`" in README, f"README lacks {path}"
