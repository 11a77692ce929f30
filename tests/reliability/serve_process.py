"""`silverexport serve` as a real child process for the reliability suites, and a plain HTTP
client for it. Every process started here is killed by `close()` (tests call it in a finally
or a fixture teardown), so a failing test never leaves a server behind."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0
KEYS = "alice:k1,bob:k2"
ALICE = {"Authorization": "Bearer k1"}
BOB = {"Authorization": "Bearer k2"}


def soak() -> bool:
    return os.environ.get("SILVEREXPORT_SOAK") == "1"


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment without its SILVEREXPORT_* settings, plus `extra`; under
    EVENT_LOG_BACKEND=postgres the test's own database stays the children's event log (with
    2 s leases)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SILVEREXPORT_")}
    if (
        os.environ.get("EVENT_LOG_BACKEND") == "postgres"
        and "SILVEREXPORT_EVENT_LOG_URL" in os.environ
    ):
        env["SILVEREXPORT_EVENT_LOG_URL"] = os.environ["SILVEREXPORT_EVENT_LOG_URL"]
        # A killed child is seen dead once its lease runs out: soon, not the default 15 s.
        env["SILVEREXPORT_LEASE_SECONDS"] = "2"
    return {**env, "PYTHONUNBUFFERED": "1", "SILVEREXPORT_API_KEYS": KEYS, **extra}


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """Run `python -m silverexport ARGS`; the CompletedProcess (text) whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "silverexport", *args],
        cwd=ROOT,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServeProcess:
    """The serve command in a child process; its stderr (the server log) goes to `log_path`."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *extra: str,
        env: dict[str, str],
        module: str = "silverexport",
    ):
        """`module` is what `python -m` runs: a test's own runner may wrap the command line
        (tests/reliability/slow_serve.py slows every export down)."""
        self.log_path = log_path
        self.signalled = False  # set by a test that sent its own SIGTERM
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    module,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--data-dir",
                    str(data_dir),
                    *extra,
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                text=True,
            )
        self.pid = self.proc.pid
        threading.Thread(target=self._read, name="serve-stdout", daemon=True).start()
        self.base_url = ""

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)

    def wait_for_url(self, timeout: float = DEADLINE) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if match := re.search(r"serving on (http://\S+)", line):
                self.base_url = match.group(1)
                return self.base_url
        self.close()
        raise AssertionError(f"no URL printed in {timeout} s: {self.log_path.read_text()}")

    @property
    def port(self) -> int:
        return urlsplit(self.base_url).port or 80

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=DEADLINE)

    def stop(self) -> int:
        """SIGTERM (a graceful stop, unless one was already sent) and the exit code."""
        if self.proc.poll() is None and not self.signalled:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def close(self) -> None:
        """Whatever state it is in: gone afterwards."""
        if self.proc.poll() is None:
            self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """http.client on one keep-alive connection (per thread: do not share it)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout=DEADLINE):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = dict(headers or ALICE)
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; header names come back lower-cased. A connection error is raised
        (a killed server), after the connection is dropped so the next call reconnects."""
        all_headers = {**self.headers, **(headers or {})}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=data, headers=all_headers)
            resp = self.conn.getresponse()
            content = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, content

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, _, content = self.request(method, path, body, **kw)
        return status, json.loads(content) if content else None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def assert_clean_body(status: int, content: bytes, what: str = "") -> None:
    """SPEC §5: never a 5xx for anything a client sent, never a traceback."""
    assert status < 500, (what, status, content[:500])
    assert b"Traceback" not in content and b'File "' not in content, (what, content[:500])
