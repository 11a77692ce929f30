"""A real PostgreSQL 15 server for the test session: own temp dir, loopback only, fsync on.

`initdb` refuses to run as root, so as root the server runs as the `postgres` user (its data
dir is made theirs); otherwise it runs as whoever runs the tests. It listens on 127.0.0.1 and
a free port, keeps its unix socket inside its own dir, and asks for a password over TCP (so
tests can check that no message ever prints it). It is stopped by its pid.

A test that takes the database away uses a server of its own (never the session's, which
other tests share): `halt()` stops it as an operator or a crash would, `resume()` starts it
again on the same port with the same data, so its clients' URLs stay right.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

BIN_DIR = Path(os.environ.get("SILVEREXPORT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
PASSWORD = "s3cret-pw-" + uuid.uuid4().hex[:8]
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0


def available() -> bool:
    """The binaries are there, and (as root) a `postgres` user to run them as."""
    if not all((BIN_DIR / name).is_file() for name in ("initdb", "postgres")):
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One server process; `url(dbname)` connects to it, `fresh_database()` makes a new db."""

    password = PASSWORD  # what no message may ever print

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="silverexport-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_path = self.root / "server.log"
        self.port = 0
        self.pid: int | None = None
        self._process: subprocess.Popen | None = None
        self._as_root = os.geteuid() == 0
        self._made = 0

    # -- life ------------------------------------------------------------------------------

    def _run_as(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", SUPERUSER, "--", *argv] if self._as_root else argv

    def _own(self, path: Path) -> None:
        if self._as_root:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def start(self) -> PostgresServer:
        self._own(self.root)
        self.socket_dir.mkdir()
        self._own(self.socket_dir)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        self._own(pwfile)
        subprocess.run(
            self._run_as(
                [
                    str(BIN_DIR / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        pwfile.unlink()
        self.port = _free_port()
        self._launch()
        return self

    def _launch(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server writes it while it lives
        self._own(self.log_path)
        self._process = subprocess.Popen(
            self._run_as(
                [
                    str(BIN_DIR / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.socket_dir}",
                    "-c",
                    "fsync=on",
                    "-c",
                    "synchronous_commit=on",
                    "-c",
                    "max_connections=200",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready()

    def halt(self, mode: str = "fast") -> None:
        """Stop the server and keep its data: "fast" is an operator's stop (SIGINT: clients
        are disconnected, the data is checkpointed), "immediate" a crash (SIGQUIT: no
        checkpoint; the next start recovers from the WAL)."""
        assert self.pid is not None, "the server is not running"
        self._kill_and_wait(signal.SIGINT if mode == "fast" else signal.SIGQUIT)

    def resume(self) -> None:
        """Start the halted server again, on the same port, with the same data."""
        assert self.pid is None, "the server is running"
        self._launch()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        pid_file = self.data / "postmaster.pid"
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start:\n{self.log_tail()}")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL not ready in {START_DEADLINE_S:.0f}s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)  # poll interval of a deadline-bounded wait
        self.pid = int(pid_file.read_text().split("\n", 1)[0])

    def stop(self) -> None:
        """Fast shutdown by pid (SIGINT), waited for; then the temp dir goes."""
        if self.pid is not None:
            self._kill_and_wait(signal.SIGINT)
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_and_wait(self, sig: signal.Signals) -> None:
        assert self.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        deadline = time.monotonic() + STOP_DEADLINE_S
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # poll interval of a deadline-bounded wait
        if _alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=STOP_DEADLINE_S)
            self._process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- databases -------------------------------------------------------------------------

    def url(self, dbname: str, *, password: str = PASSWORD) -> str:
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{dbname}"

    def fresh_database(self) -> str:
        """A new empty database (copied from template0: nothing anyone added elsewhere)."""
        self._made += 1
        name = f"t{os.getpid()}_{self._made}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead for our purposes; reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True
