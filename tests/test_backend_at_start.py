"""An event log out of reach at start (SPEC §8): every command that uses the log exits
non-zero with one line naming the setting, never the password, and never hangs on a server
that does not answer. `ingest` and `demo-data` use only the Silver store: the log's database
being away does not stop them."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from silverexport.events.postgres_conn import BOUNDED_WAITS, bounded_waits
from tests.reliability.serve_process import ROOT

SECRET = "pw-never-printed-789"
USES_THE_LOG = [
    ["serve", "--port", "0"],
    ["export", "token_transfers", "--format", "csv"],
    ["jobs"],
    ["prune"],
    ["audit"],
    ["verify"],
    ["rebuild"],
]


@pytest.fixture
def dead_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word, like a hung server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def run(tmp_path: Path, port: int, *command: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "SILVEREXPORT_EVENT_LOG_URL": f"postgresql://app:{SECRET}@127.0.0.1:{port}/events",
        "SILVEREXPORT_DATA_DIR": str(tmp_path / "data"),
        "SILVEREXPORT_API_KEYS": "t:k",  # so that serve has no warning of its own to print
    }
    return subprocess.run(
        [sys.executable, "-m", "silverexport", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_naming_the_setting(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    assert line.startswith("silverexport: error: SILVEREXPORT_EVENT_LOG_URL: cannot connect")
    assert "postgresql://app:***@127.0.0.1" in line
    assert SECRET not in done.stderr + done.stdout


@pytest.mark.parametrize("command", USES_THE_LOG, ids=lambda c: c[0])
def test_a_command_using_the_log_exits_with_one_line_when_its_database_is_unreachable(
    tmp_path, dead_port, command
):
    assert_one_line_naming_the_setting(run(tmp_path, dead_port, *command))


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["verify"]], ids=lambda c: c[0])
def test_a_server_that_never_answers_is_given_up_on_not_waited_for(
    tmp_path, silent_server, command
):
    """The bounded connect: without it libpq would wait on the silent socket for ever (and
    this test would hit its timeout)."""
    done = run(tmp_path, silent_server, *command)
    assert_one_line_naming_the_setting(done)
    assert "timeout" in done.stderr


def test_ingest_and_demo_data_need_only_the_silver_store(tmp_path, dead_port):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("")
    assert run(tmp_path, dead_port, "ingest", "token_transfers", str(rows)).returncode == 0
    assert run(tmp_path, dead_port, "demo-data").returncode == 0


def test_the_bounded_waits_yield_to_what_the_url_says():
    assert bounded_waits("postgresql://u:p@h/db") == BOUNDED_WAITS
    waits = bounded_waits("postgresql://u:p@h/db?connect_timeout=30&keepalives_idle=60")
    assert "connect_timeout" not in waits and "keepalives_idle" not in waits
    assert waits["tcp_user_timeout"] == BOUNDED_WAITS["tcp_user_timeout"]
