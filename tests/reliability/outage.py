"""What the database-outage tests share: a client that records every status it was answered
(so a test can say "never a 500"), deadline-bounded waits, and an SSE reader on a thread.

The server under test is a real one (in-process on a loopback port, or a `serve` child); the
database is a PostgreSQL server of the test's own that it halts and resumes.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tests.reliability.serve_process import ALICE, Client

DEADLINE = 60.0
TERMINAL = {"completed", "failed", "cancelled", "expired"}
CSV = {"dataset": "token_transfers", "format": "csv"}


class Recording(Client):
    """A Client that keeps every status; `fives()` are the 5xx other than 503."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        super().__init__(base_url, headers)
        self.seen: list[tuple[str, str, int]] = []

    def request(self, method: str, path: str, body: Any = None, **kw: Any):
        status, headers, content = super().request(method, path, body, **kw)
        self.seen.append((method, path, status))
        assert b"Traceback" not in content, content[:500]
        if status == 503:
            assert headers.get("retry-after", "").isdigit(), (method, path, headers)
            document = json.loads(content)
            assert document.get("error", {}).get("message") or path == "/healthz", document
        return status, headers, content

    def fives(self) -> list[tuple[str, str, int]]:
        return [seen for seen in self.seen if seen[2] >= 500 and seen[2] != 503]


def until(what: str, check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Call `check` until it returns something true; that value. Fails after `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, f"{what}: not within {deadline:.0f} s"
        time.sleep(0.05)  # poll interval of a deadline-bounded wait


def submit(client: Recording, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        status, document = client.json("POST", "/v1/export/dataset", CSV)
        assert status == 202, document
        ids.append(document["job_id"])
    return ids


def health(client: Recording) -> tuple[int, Any]:
    return client.json("GET", "/healthz")


def all_finished(client: Recording, ids: list[str]) -> dict[str, dict] | None:
    """The jobs' documents once every one is over (None until then, or while a read is 503)."""
    documents = {}
    for job_id in ids:
        status, document = client.json("GET", f"/v1/export/jobs/{job_id}")
        if status == 503:
            return None
        assert status == 200, document
        if document["status"] not in TERMINAL:
            return None
        documents[job_id] = document
    return documents


def downloaded_sha256(client: Recording, job_id: str) -> str:
    status, _, content = client.request("GET", f"/v1/export/jobs/{job_id}/download")
    assert status == 200, content[:300]
    return hashlib.sha256(content).hexdigest()


class StreamWatcher:
    """Reads one job's SSE stream on a thread: the event names, and whether it ended."""

    def __init__(self, base_url: str, job_id: str):
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=DEADLINE)
        self.conn.request("GET", f"/v1/export/jobs/{job_id}/stream", headers=ALICE)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.events: list[str] = []
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, name="sse-watcher", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    self.events.append(line.removeprefix("event: "))
        except BaseException as e:  # a dropped stream is what the test looks at
            self.error = e
        finally:
            self.ended.set()

    def close(self) -> None:
        self.conn.close()


class HookReceiver:
    """A loopback webhook receiver on a thread: answers 200 and keeps each body's job id."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.job_ids = []
        changed = self.changed = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with changed:
                    received.append(json.loads(body)["job"]["job_id"])
                    changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, job_ids: set[str], deadline: float = DEADLINE) -> None:
        with self.changed:
            got = self.changed.wait_for(lambda: job_ids <= set(self.job_ids), deadline)
        assert got, f"deliveries for {job_ids - set(self.job_ids)} never came"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
