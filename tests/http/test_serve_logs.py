"""`silverexport serve`'s log, as a real process writes it: text by default, JSON lines with
SILVEREXPORT_LOG_FORMAT=json; one access line per request either way."""

from __future__ import annotations

import json
import re
import time

from tests.reliability.serve_process import ALICE, DEADLINE, Client, ServeProcess, child_env

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ASCTIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ")


def run_a_job(tmp_path, **env: str) -> tuple[str, list[str]]:
    """Serve, create a job, poll it to the end, ask for /healthz; the job id and log lines."""
    server = ServeProcess(tmp_path / "data", tmp_path / "serve.log", env=child_env(**env))
    with server:
        client = Client(server.wait_for_url(), ALICE)
        status, job = client.json(
            "POST", "/v1/export/dataset", {"dataset": "hl_fills", "format": "csv"}
        )
        assert status == 202, job
        deadline = time.monotonic() + DEADLINE
        while job["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, job
            job = client.json("GET", f"/v1/export/jobs/{job['job_id']}")[1]
        assert client.request("GET", "/healthz", headers={"User-Agent": "probe/1"})[0] == 200
        client.close()
        assert server.stop() == 0
    return job["job_id"], server.log_path.read_text().splitlines()


def test_the_text_log_has_one_access_line_per_request(tmp_path):
    job_id, lines = run_a_job(tmp_path)
    access = [line for line in lines if " silverexport.access: " in line]
    assert any(
        re.search(r' INFO silverexport.access: 127\.0\.0\.1 "GET /healthz HTTP/1\.1" 200 \d+ '
                  r'[0-9.]+s "probe/1"$', line) for line in access
    ), access  # fmt: skip
    assert any('"POST /v1/export/dataset HTTP/1.1" 202' in line for line in access)
    polls = [line for line in access if f'"GET /v1/export/jobs/{job_id} HTTP/1.1" 200' in line]
    assert polls and len(access) == 2 + len(polls)  # one line per request, no more
    assert not any(line.lstrip().startswith("{") for line in lines)
    # Access lines carry their time as every other line does: logging's asctime.
    assert all(ASCTIME.match(line) for line in access), access
    others = [line for line in lines if " INFO silverexport.jobs: " in line]
    assert others and all(ASCTIME.match(line) for line in others)


def test_the_json_log_is_json_lines_with_ts_level_msg_and_job_ids(tmp_path):
    job_id, lines = run_a_job(tmp_path, SILVEREXPORT_LOG_FORMAT="json")
    records = [json.loads(line) for line in lines]  # every line, not only the access log
    for record in records:
        assert TS.fullmatch(record["ts"]) and record["level"] in ("info", "warning", "error")
        assert record["msg"]
    access = [r for r in records if r["logger"] == "silverexport.access"]
    health = [r for r in access if r["path"] == "/healthz"]
    assert len(health) == 1 and health[0]["status"] == 200 and "job_id" not in health[0]
    assert health[0]["user_agent"] == "probe/1" and health[0]["msg"] == "GET /healthz HTTP/1.1 200"
    polls = [r for r in access if r["path"] == f"/v1/export/jobs/{job_id}"]
    assert polls and all(r["job_id"] == job_id and r["method"] == "GET" for r in polls)
    # Job state changes (logger silverexport.jobs) carry the job's id as a field.
    assert all(r.get("job_id") for r in records if r["logger"] == "silverexport.jobs")


def test_an_unknown_log_format_stops_serve_at_start_naming_the_setting(tmp_path):
    server = ServeProcess(
        tmp_path / "data", tmp_path / "serve.log", env=child_env(SILVEREXPORT_LOG_FORMAT="xml")
    )
    with server:
        assert server.proc.wait(timeout=DEADLINE) == 2
    assert "SILVEREXPORT_LOG_FORMAT" in server.log_path.read_text()
