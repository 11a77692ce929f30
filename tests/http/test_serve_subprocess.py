"""`silverexport serve` as a real process: plain HTTP end to end, then SIGTERM."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.reliability.serve_process import DEADLINE
from tests.reliability.serve_process import ServeProcess as Server

KEY = {"Authorization": "Bearer k1"}


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict, bytes]:
    """Plain urllib; header names come back lower-cased."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**KEY, **({"Content-Type": "application/json"} if data else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SILVEREXPORT_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def test_serve_runs_a_job_end_to_end_and_stops_cleanly_on_sigterm(tmp_path):
    server = Server(
        tmp_path / "data",
        tmp_path / "serve.log",
        "--demo",
        env=child_env(SILVEREXPORT_API_KEYS="alice:k1"),
    )
    try:
        base = server.wait_for_url()
        status, headers, body = call(
            "POST", f"{base}/v1/export/dataset", {"dataset": "hl_fills", "format": "jsonl"}
        )
        assert status == 202, body
        job = json.loads(body)
        assert headers["location"] == f"/v1/export/jobs/{job['job_id']}"

        deadline = time.monotonic() + DEADLINE
        while job["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, job
            job = json.loads(call("GET", base + headers["location"])[2])
        assert job["status"] == "completed" and job["rows"] == 1000  # the demo's rows

        status, file_headers, content = call("GET", base + job["download_url"])
        assert status == 200
        assert hashlib.sha256(content).hexdigest() == job["sha256"]
        assert file_headers["etag"] == f'"{job["sha256"]}"'
        assert len(content.splitlines()) == 1000
    finally:
        code = server.stop()
    assert code == 0
    log = server.log_path.read_text()
    assert "Traceback" not in log
    assert re.search(r'"GET /v1/export/jobs/[0-9a-f]{32}/download HTTP/1\.1" 200', log)
    # Keys were configured: the demo banner shows the configured one, not a new one.
    assert any("API key for tenant 'alice': k1" in line for line in server.stdout)


def test_demo_without_keys_prints_a_working_key_and_a_curl_example(tmp_path):
    server = Server(tmp_path / "data", tmp_path / "serve.log", "--demo", env=child_env())
    try:
        base = server.wait_for_url()
        deadline = time.monotonic() + DEADLINE
        while not any("curl" in line for line in server.stdout):
            assert time.monotonic() < deadline
            server.lines.get(timeout=DEADLINE)
        printed = "".join(server.stdout)
        key = re.search(r"API key for tenant 'demo': (\S+)", printed).group(1)
        assert f"Bearer {key}" in printed and f"{base}/v1/export/dataset" in printed
        request = urllib.request.Request(
            f"{base}/v1/export/jobs", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=DEADLINE) as resp:
            assert json.loads(resp.read()) == {"jobs": [], "next_cursor": None}
    finally:
        assert server.stop() == 0


def test_sigint_stops_it_too_and_jobs_survive_a_restart(tmp_path):
    env = child_env(SILVEREXPORT_API_KEYS="alice:k1")
    server = Server(tmp_path / "data", tmp_path / "one.log", env=env)
    try:
        base = server.wait_for_url()
        status, _, body = call(
            "POST", f"{base}/v1/export/dataset", {"dataset": "positions", "format": "csv"}
        )
        assert status == 202
        job_id = json.loads(body)["job_id"]
    finally:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=DEADLINE) == 0

    again = Server(tmp_path / "data", tmp_path / "two.log", env=env)
    try:
        base = again.wait_for_url()
        status, _, body = call("GET", f"{base}/v1/export/jobs/{job_id}")
        assert status == 200 and json.loads(body)["job_id"] == job_id
    finally:
        assert again.stop() == 0


def test_sigterm_lets_a_download_in_flight_finish_but_takes_no_new_connections(tmp_path):
    data_dir, env = tmp_path / "data", child_env(SILVEREXPORT_API_KEYS="alice:k1")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "silverexport",
            "demo-data",
            "--rows",
            "20000",
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = Server(data_dir, tmp_path / "serve.log", env=env)
    try:
        base = server.wait_for_url()
        _, headers, _ = call(
            "POST", f"{base}/v1/export/dataset", {"dataset": "token_transfers", "format": "jsonl"}
        )
        job_url = base + headers["location"]
        deadline = time.monotonic() + DEADLINE
        while (job := json.loads(call("GET", job_url)[2]))["status"] != "completed":
            assert time.monotonic() < deadline and job["status"] in ("queued", "running"), job
        request = urllib.request.Request(f"{job_url}/download", headers=KEY)
        with urllib.request.urlopen(request, timeout=DEADLINE) as resp:
            first = resp.read(64 * 1024)
            server.proc.send_signal(signal.SIGTERM)
            server.signalled = True
            deadline = time.monotonic() + DEADLINE
            while True:  # the listening socket closes; the download keeps going
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
                except OSError:  # refused, reset, or never answered: not served
                    break
                assert time.monotonic() < deadline, "still accepting after SIGTERM"
            content = first + resp.read()
        assert hashlib.sha256(content).hexdigest() == job["sha256"]
        assert len(content) > 1024 * 1024  # larger than the socket buffers
    finally:
        code = server.stop()
    assert code == 0
