"""Hostile input against `silverexport serve` as a real process: a bounded Schemathesis run over
the document the server itself serves at /v1/openapi.json, then hand-written attacks — huge
bodies, deep JSON, invalid UTF-8, wrong media types, header injection, path traversal, SQL
metacharacters in every filter, absurd limits, slow clients, and a cross-tenant sweep.

Across all of it: zero 5xx, zero tracebacks in any body, zero cross-tenant reads, and nothing
in the server log that says an unexpected error was hit.

Size: FUZZ_EXAMPLES per operation (default 40; 400 with SILVEREXPORT_SOAK=1).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import psutil
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config._auth import AuthConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from silverexport.silver.store import SilverStore
from tests.actors.conftest import transfer_rows

from .reliability_figures import record
from .serve_process import (
    ALICE,
    BOB,
    DEADLINE,
    Client,
    ServeProcess,
    assert_clean_body,
    child_env,
    soak,
)

MAX_EXAMPLES = 400 if soak() else int(os.environ.get("FUZZ_EXAMPLES", "40"))
NOT_APPLICABLE = [positive_data_acceptance]  # see tests/http/test_http_fuzz.py
ROWS = 300
TALLY: Counter = Counter()  # requests tried, 5xx, tracebacks, cross-tenant reads, by source


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    """One server for the module. Its teardown reports the module's figures and holds the
    whole log to no unexpected error, even one logged after the last client left."""
    tmp = tmp_path_factory.mktemp("hostile")
    data = tmp / "data"
    data.mkdir()
    store = SilverStore(data / "silver.db")
    try:
        store.ingest("token_transfers", transfer_rows(ROWS, target="t1"))
        store.ingest("token_transfers", transfer_rows(40, target="t2", start=ROWS))
    finally:
        store.close()
    TALLY.clear()
    server = ServeProcess(data, tmp / "serve.log", env=child_env())
    try:
        server.wait_for_url()
        yield server
    finally:
        server.close()
    errors = unexpected_errors(server.log_path.read_text(errors="replace"))
    record(request, "hostile input", figures(len(errors)), tmp)
    assert not errors, errors[0]


@pytest.fixture(autouse=True)
def _no_unexpected_errors_logged(served):
    """Each test on its own: what it sent made the server log no unexpected error."""
    start = served.log_path.stat().st_size
    yield
    with served.log_path.open("rb") as log:
        log.seek(start)
        errors = unexpected_errors(log.read().decode(errors="replace"))
    assert not errors, errors[0]


@pytest.fixture
def alice(served):
    client = Client(served.base_url, ALICE)
    yield client
    client.close()


@pytest.fixture
def bob(served):
    client = Client(served.base_url, BOB)
    yield client
    client.close()


def tally(source: str, status: int, content: bytes) -> None:
    TALLY[f"{source}_requests"] += 1
    TALLY["requests"] += 1
    if status >= 500:
        TALLY["5xx"] += 1
    if b"Traceback" in content or b'File "' in content:
        TALLY["tracebacks"] += 1


def send(client: Client, method: str, path: str, body: Any = None, **kw: Any):
    """One hand-written request: tallied, and held to no 5xx and no traceback at once."""
    status, headers, content = client.request(method, path, body, **kw)
    tally("handwritten", status, content)
    assert_clean_body(status, content, f"{method} {path}")
    return status, headers, content


def error_code(content: bytes) -> str:
    return json.loads(content)["error"]["code"]


def raw_exchange(base_url: str, data: bytes, *, read_timeout: float = DEADLINE) -> bytes:
    """Bytes on a fresh socket, exactly as given; the whole answer until the server closes or
    the answer's Content-Length is read."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
            head, sep, body = answer.partition(b"\r\n\r\n")
            if sep:
                length = [
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(body) >= length[0]:
                    break
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    tally("handwritten", status, answer)
    # aiohttp's parser answers a malformed request itself, as HTTP/1.0 and in plain text.
    assert answer.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), answer[:200]
    assert_clean_body(status, answer, repr(data[:80]))
    return answer


def waiting_for_more(sock: socket.socket) -> bool:
    """The server holds the connection open and has answered nothing on it yet."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # look, do not wait
    try:
        sock.recv(1, socket.MSG_PEEK)  # b"" (closed) or an answer
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(timeout)
    return False


def wait_done(client: Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        status, job = client.json("GET", f"/v1/export/jobs/{job_id}")
        assert status == 200, job
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)  # polling, as a client does


def create(client: Client, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    status, _, content = send(client, "POST", "/v1/export/dataset", body, **kw)
    assert status == 202, content
    return json.loads(content)


# -- Schemathesis over the served document ---------------------------------------------------


def test_the_served_document_holds_under_fuzzing(served):
    """Every operation of the document the server serves, with schema-valid and schema-invalid
    data (Hypothesis-driven, MAX_EXAMPLES each), held to the document and to no 5xx."""
    schema = schemathesis.openapi.from_url(f"{served.base_url}/v1/openapi.json")
    schema.config.auth = AuthConfig.from_dict(
        {"openapi": {"bearer": {"bearer": ALICE["Authorization"].removeprefix("Bearer ")}}}
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    session = requests.Session()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case) -> None:
                response = case.call(base_url=served.base_url, session=session)
                tally("schemathesis", response.status_code, response.content)
                assert_clean_body(
                    response.status_code, response.content, f"{case.method} {case.path}"
                )
                case.validate_response(
                    response,
                    excluded_checks=NOT_APPLICABLE,
                    transport_kwargs={"base_url": served.base_url, "session": session},
                )

            try:
                run()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (GET /healthz has no inputs).
                assert mode is GenerationMode.NEGATIVE, operation.label
                TALLY["operations_without_negative_cases"] += 1
    session.close()


# -- bodies ------------------------------------------------------------------------------------


def test_huge_bodies_are_413_whether_announced_or_streamed(alice, served):
    big = b'{"dataset": "token_transfers", "format": "csv", "target_id": "' + b"x" * 200_000
    big += b'"}'
    status, _, content = send(
        alice, "POST", "/v1/export/dataset", raw=big, headers={"Content-Type": "application/json"}
    )
    assert status == 413 and error_code(content) == "payload_too_large"
    # Chunked, with no length announced: stopped at the limit, not read to the end.
    chunk = b"x" * 60_000
    request = (
        b"POST /v1/export/dataset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4))
        + b"0\r\n\r\n"
    )
    answer = raw_exchange(served.base_url, request)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    # An announced length far beyond the limit is refused before any body is sent.
    announced = (
        b"POST /v1/export/dataset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{"
    )
    answer = raw_exchange(served.base_url, announced)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 30_000 + b"]" * 30_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"dataset": ' + b"[" * 5_000 + b"]" * 5_000 + b', "format": "csv"}',
        b'{"dataset": "token_transfers", "format": "csv", "target_id": {"a": ' * 200
        + b"1"
        + b"}" * 200,
    ],
    ids=["arrays", "objects", "nested-dataset", "nested-filter"],
)
def test_deep_json_nesting_is_a_400(alice, raw):
    status, _, content = send(
        alice, "POST", "/v1/export/dataset", raw=raw, headers={"Content-Type": "application/json"}
    )
    assert status in (400, 413), content


@pytest.mark.parametrize(
    "raw",
    [
        b'{"dataset": "token_transfers\xff", "format": "csv"}',
        b'{"dataset": "token_transfers", "format": "csv", "target_id": "\xc3\x28"}',
        b'{"dataset": "token_transfers", "format": "csv", "target_id": "\xed\xa0\x80"}',
        b'{"dataset": "token_transfers", "format": "csv", "target_id": "\\ud800"}',
        b"\xef\xbb\xbf" + b'{"dataset": "token_transfers", "format": "csv"}',
        b"\x00" * 100,
        b"\xff\xfe{\x00}\x00",
    ],
)
def test_invalid_utf8_and_lone_surrogates_are_a_400(alice, raw):
    status, _, content = send(
        alice, "POST", "/v1/export/dataset", raw=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 400, content


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/xml",
        "json",
        "",
        "application/json; charset=latin-1",
        "application/json\u00e9",
    ],
)
def test_a_wrong_content_type_is_never_a_5xx(alice, content_type):
    """The server reads the body as JSON whatever its label (curl -d sends JSON as a form): a
    JSON object is taken, anything else is a 400 that says how it was sent."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    if content_type and not content_type.isascii():
        headers = {"Content-Type": content_type.encode().decode("latin-1")}
    status, _, content = send(
        alice,
        "POST",
        "/v1/export/dataset",
        raw=b'{"dataset": "token_transfers", "format": "csv"}',
        headers=headers,
    )
    assert status in (202, 415), content
    for raw in [
        b"dataset=token_transfers&format=csv",
        b"--x\r\nContent-Disposition: form-data; name=dataset\r\n\r\nhl_fills\r\n--x--\r\n",
        b"<export><dataset>hl_fills</dataset></export>",
    ]:
        status, _, content = send(alice, "POST", "/v1/export/dataset", raw=raw, headers=headers)
        assert status in (400, 415), content


def test_invalid_utf8_in_paths_queries_and_headers(served):
    for request in [
        b"GET /v1/export/jobs?status=%ff%fe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
        b"\r\n",
        b"GET /v1/export/jobs?st\xffatus=x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n\r\n",
        b"GET /v1/export/%ff%fe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n\r\n",
        b"GET /v1/export/jobs/\xff\xfe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n\r\n",
        b"GET /v1/export/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\xff1\r\n\r\n",
        b"GET /v1/export/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: \xff\xfe\r\n\r\n",
        b"POST /v1/export/dataset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
        b"Idempotency-Key: \xff\xfe\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"\r\n{}",
    ]:
        answer = raw_exchange(served.base_url, request)
        status = int(answer.split(b" ", 2)[1])
        assert status in (400, 401, 404), answer[:300]


# -- header injection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset",
    [
        'token_transfers"; filename="evil.sh',
        "token_transfers\r\nSet-Cookie: a=b",
        "token_transfers\nX-Injected: 1",
        "../../etc/passwd",
        "token_transfers\x00",
        "token_transfers ",
        "TOKEN_TRANSFERS",
    ],
)
def test_dataset_names_that_would_inject_headers_are_refused(alice, dataset):
    status, headers, content = send(
        alice, "POST", "/v1/export/dataset", {"dataset": dataset, "format": "csv"}
    )
    assert status == 400, content
    assert "set-cookie" not in headers and "x-injected" not in headers
    assert "token_transfers" in content.decode()  # the valid ones are listed


def test_content_disposition_only_ever_names_a_valid_dataset_and_job(alice, served):
    job = wait_done(alice, create(alice, {"dataset": "token_transfers", "format": "csv"})["job_id"])
    status, headers, _ = send(alice, "GET", job["download_url"])
    assert status == 200
    assert headers["content-disposition"] == (
        f'attachment; filename="token_transfers-{job["job_id"]}.csv"'
    )
    # Idempotency keys and filters with CR/LF cannot reach a header either.
    request = (
        b"POST /v1/export/dataset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
        b"Idempotency-Key: a\rSet-Cookie: x=y\r\nContent-Type: application/json\r\n"
        b"Content-Length: 44\r\n\r\n"
        b'{"dataset":"token_transfers","format":"csv"}'
    )
    answer = raw_exchange(served.base_url, request)
    assert b"Set-Cookie" not in answer.partition(b"\r\n\r\n")[0]


# -- path traversal ----------------------------------------------------------------------------

TRAVERSALS = [
    "..",
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fevents.db",
    "%2e%2e",
    "..%5c..%5cevents.db",
    "%00",
    "0" * 32 + "%00",
    "0" * 32 + "%00.csv",
    "..%00",
    "%252e%252e%252f",
    "0" * 31 + "%2f",
    "0" * 32 + "%2f..%2f..%2fevents.db",
    "A" * 32,
    "0" * 33,
    "0" * 10_000,
]


@pytest.mark.parametrize("job_id", TRAVERSALS)
def test_path_traversal_in_job_ids_finds_nothing(alice, job_id):
    for method, suffix in [
        ("GET", ""),
        ("GET", "/download"),
        ("GET", "/events"),
        ("DELETE", ""),
    ]:
        status, _, content = send(alice, method, f"/v1/export/jobs/{job_id}{suffix}")
        assert status in (400, 404, 405), (method, suffix, status, content[:200])
        assert b"SQLite" not in content and b"root:" not in content


@pytest.mark.parametrize(
    "wallet",
    [
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e%2fevents.db",
        "0x" + "ab" * 20 + "%00",
        "0x" + "ab" * 20 + "%2f..",
        "0x" + "ab" * 19 + "%27",
        "0x" + "ab" * 20 + "'%20OR%20'1'='1",
        "0x%25",
        "0x" + "g" * 40,
        "0X" + "ab" * 20,
        "0x" + "ab" * 20 + "0",
        "0x" + "ab" * 5_000,
    ],
)
def test_path_traversal_and_garbage_in_wallets_is_a_400(alice, wallet):
    status, _, content = send(alice, "GET", f"/v1/export/{wallet}")
    assert status in (400, 404), (status, content[:200])


# -- SQL metacharacters in every filter --------------------------------------------------------

SQL_TEXT = [
    "' OR '1'='1",
    "t1' --",
    '"; DROP TABLE events; --',
    "t1'); DELETE FROM token_transfers; --",
    "%",
    "_1",
    "t%",
    "\\",
    "t1\x00",
    "*",
    "t1 OR 1=1",
]


@pytest.mark.parametrize("value", SQL_TEXT)
def test_sql_metacharacters_in_text_filters_match_nothing(alice, value):
    for name in ("target_id", "network"):
        body = {"dataset": "token_transfers", "format": "jsonl", name: value}
        job = wait_done(alice, create(alice, body)["job_id"])
        assert job["status"] == "completed" and job["rows"] == 0, job
        assert job["filters"][name] == value
        status, _, content = send(alice, "GET", job["download_url"])
        assert status == 200 and content == b""
    # The real values still match: nothing was dropped or deleted.
    job = wait_done(
        alice,
        create(alice, {"dataset": "token_transfers", "format": "csv", "target_id": "t1"})["job_id"],
    )
    assert job["rows"] == ROWS


@pytest.mark.parametrize("value", [*SQL_TEXT, "2024-01-01T00:00:00Z' OR '1'='1"])
def test_sql_metacharacters_everywhere_else_are_a_400(alice, value):

    q = quote(value, safe="")
    for name in ("from", "to"):
        body = {"dataset": "token_transfers", "format": "csv", name: value}
        status, _, _ = send(alice, "POST", "/v1/export/dataset", body)
        assert status == 400
    status, _, _ = send(alice, "POST", "/v1/export/dataset", {"dataset": value, "format": "csv"})
    assert status == 400
    status, _, _ = send(alice, "POST", "/v1/export/dataset", {"dataset": "hl_fills", "format": q})
    assert status == 400
    for name in ("status", "dataset", "cursor", "limit"):
        status, _, _ = send(alice, "GET", f"/v1/export/jobs?{name}={q}")
        assert status == 400, name
    status, _, _ = send(alice, "GET", f"/v1/export/{q}")
    assert status in (400, 404)
    status, _, _ = send(alice, "GET", f"/v1/export/0x{'ab' * 20}?format={q}")
    assert status == 400


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit", [0, -1, 100_001, 10**30, -(10**30), 1.5, 1.0, True, False, "5", "", [5], {"n": 5}]
)
def test_absurd_body_limits_are_a_400(alice, limit):
    body = {"dataset": "token_transfers", "format": "csv", "limit": limit}
    status, _, content = send(alice, "POST", "/v1/export/dataset", body)
    assert status == 400 and b"limit" in content, content


def test_an_enormous_number_in_a_body_is_a_400(alice):
    raw = b'{"dataset": "token_transfers", "format": "csv", "limit": 1' + b"0" * 5000 + b"}"
    status, _, _ = send(
        alice, "POST", "/v1/export/dataset", raw=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    raw = b'{"dataset": "token_transfers", "format": "csv", "limit": 1e999}'
    status, _, _ = send(
        alice, "POST", "/v1/export/dataset", raw=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 400


@pytest.mark.parametrize(
    "limit",
    [
        "0",
        "-1",
        "501",
        "1.5",
        "true",
        "",
        "1e3",
        "0x10",
        "99999999999999999999",
        " 5",
        "5 ",
        "\u0665",
    ],
)
def test_absurd_query_limits_are_a_400(alice, limit):

    status, _, content = send(alice, "GET", f"/v1/export/jobs?limit={quote(limit)}")
    assert status == 400 and b"limit" in content, content


# -- slow clients ------------------------------------------------------------------------------


def test_slow_clients_do_not_stop_others_nor_grow_threads(served, alice):
    """Connections that send headers then trickle a body, or never finish their headers, each
    cost a socket, not a thread: the server keeps answering others at once."""
    proc = psutil.Process(served.pid)
    send(alice, "GET", "/v1/export/jobs")  # the pools are warm
    before = proc.num_threads()
    host, port = served.base_url.removeprefix("http://").split(":")
    stop = threading.Event()
    socks: list[socket.socket] = []
    peak = before
    try:
        for i in range(60):
            sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
            socks.append(sock)
            if i % 3 == 0:  # headers, then a body that never comes
                sock.sendall(
                    b"POST /v1/export/dataset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
                )
            elif i % 3 == 1:  # headers that never end
                sock.sendall(b"GET /v1/export/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bea")
            else:  # a body sent one byte at a time, below
                sock.sendall(
                    b"POST /v1/export/dataset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 48\r\n\r\n"
                )
        body = b'{"dataset": "token_transfers", "format": "csv"}'

        def trickle() -> None:
            for byte in body[:40]:
                for sock in socks[2::3]:
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        return
                if stop.wait(0.02):  # the trickle's pace, not a synchronisation
                    return

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        latencies = []
        for _ in range(60):
            started = time.monotonic()
            status, _, _ = send(alice, "GET", "/v1/export/jobs?limit=5")
            latencies.append(time.monotonic() - started)  # a figure, not a pass mark
            assert status == 200
            peak = max(peak, proc.num_threads())
        # Every slow connection is still held open, unanswered, after the others were served.
        assert [waiting_for_more(sock) for sock in socks] == [True] * len(socks)
        job = wait_done(alice, create(alice, {"dataset": "hl_funding", "format": "csv"})["job_id"])
        assert job["status"] == "completed"
        peak = max(peak, proc.num_threads())
        stop.set()
        trickler.join(DEADLINE)
    finally:
        stop.set()
        for sock in socks:
            sock.close()
    TALLY["slow_clients"] += len(socks)
    TALLY["threads_before_slow_clients"] = before
    TALLY["peak_threads_with_slow_clients"] = peak
    TALLY["slowest_answer_ms_with_slow_clients"] = round(max(latencies) * 1000, 1)
    # One more export actor may run at a time; the connections themselves add no thread.
    assert peak <= before + 2, (before, peak)


# -- tenants -----------------------------------------------------------------------------------


def test_bob_never_reads_alices_jobs_on_any_route(alice, bob):
    done = wait_done(
        alice, create(alice, {"dataset": "token_transfers", "format": "csv"})["job_id"]
    )
    assert done["status"] == "completed"
    keyed = create(
        alice, {"dataset": "hl_fills", "format": "jsonl"}, headers={"Idempotency-Key": "shared-k"}
    )
    alices = {done["job_id"], keyed["job_id"]}
    status, page = alice.json("GET", "/v1/export/jobs?limit=500")
    alices |= {j["job_id"] for j in page["jobs"]}
    for job_id in sorted(alices):
        for method, suffix in [
            ("GET", ""),
            ("GET", "/download"),
            ("GET", "/events"),
            ("DELETE", ""),
            ("HEAD", "/download"),
        ]:
            status, _, content = send(bob, method, f"/v1/export/jobs/{job_id}{suffix}")
            if status != 404:
                TALLY["cross_tenant_reads"] += 1
            assert status == 404, (method, suffix, status, content[:200])
            if method != "HEAD":
                assert error_code(content) == "not_found", content
            TALLY["cross_tenant_probes"] += 1
    # Listing, with every filter and through every page: none of alice's.
    for query in ["", "?status=completed", "?dataset=token_transfers", "?limit=1"]:
        cursor, seen = None, 0
        while True:
            sep = "&" if "?" in query else "?"
            path = "/v1/export/jobs" + query + (f"{sep}cursor={cursor}" if cursor else "")
            status, _, content = send(bob, "GET", path)
            assert status == 200
            page = json.loads(content)
            leaked = {j["job_id"] for j in page["jobs"]} & alices
            TALLY["cross_tenant_reads"] += len(leaked)
            assert not leaked
            cursor, seen = page["next_cursor"], seen + 1
            if not cursor or seen > 50:
                break
    # The same Idempotency-Key from bob makes bob's own job, never returns alice's.
    status, _, content = send(
        bob,
        "POST",
        "/v1/export/dataset",
        {"dataset": "hl_fills", "format": "jsonl"},
        headers={"Idempotency-Key": "shared-k"},
    )
    assert status == 202 and keyed["job_id"].encode() not in content
    # Alice's job is untouched by bob's DELETE.
    status, job = alice.json("GET", f"/v1/export/jobs/{done['job_id']}")
    assert status == 200 and job["status"] == "completed"
    status, _, data = send(alice, "GET", done["download_url"])
    assert hashlib.sha256(data).hexdigest() == done["sha256"]


def unexpected_errors(log: str) -> list[str]:
    """The server log's 'unexpected error' entries (a 500, logged with a traceback). aiohttp's
    own parser logs the malformed requests above with a traceback too, but answers them 400."""
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d )", log)
    return [
        e
        for e in entries
        if "unexpected error" in e
        or ("Error handling request" in e and "aiohttp.http_exceptions." not in e)
    ]


def figures(unexpected_errors_logged: int) -> dict[str, Any]:
    """What the module's tests tried and found (each test asserts its own share at once)."""
    names = [
        "requests",
        "schemathesis_requests",
        "handwritten_requests",
        "5xx",
        "tracebacks",
        "cross_tenant_probes",
        "cross_tenant_reads",
        "slow_clients",
        "threads_before_slow_clients",
        "peak_threads_with_slow_clients",
        "slowest_answer_ms_with_slow_clients",
    ]
    found = {("requests_tried" if n == "requests" else n): TALLY[n] for n in names}
    return found | {"unexpected_errors_logged": unexpected_errors_logged}
