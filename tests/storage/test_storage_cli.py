"""`silverexport export` with its file in S3: -o and stdout copy the object out of the store."""

from __future__ import annotations

import csv
import hashlib
import io

from silverexport.__main__ import main
from silverexport.silver.store import SilverStore
from tests.actors.conftest import transfer_rows


def test_export_o_copies_the_object_out_of_the_bucket(
    s3_server, s3_bucket, tmp_path, monkeypatch, capsysbinary
):
    monkeypatch.setenv("SILVEREXPORT_STORAGE_URL", f"s3://{s3_bucket}/cli")
    monkeypatch.setenv("SILVEREXPORT_S3_ENDPOINT_URL", s3_server.endpoint_url)
    data = tmp_path / "data"
    data.mkdir()
    with SilverStore(data / "silver.db") as store:
        store.ingest("token_transfers", transfer_rows(40))
    out = tmp_path / "transfers.csv"
    command = ["export", "token_transfers", "--data-dir", str(data), "--format", "csv"]

    assert main([*command, "-o", str(out)]) == 0
    err = capsysbinary.readouterr().err.decode()
    client = s3_server.client()
    (obj,) = client.list_objects_v2(Bucket=s3_bucket, Prefix="cli/")["Contents"]
    stored = client.get_object(Bucket=s3_bucket, Key=obj["Key"])["Body"].read()
    assert out.read_bytes() == stored
    assert len(list(csv.reader(io.StringIO(stored.decode(), newline="")))) == 1 + 40
    assert f"sha256 {hashlib.sha256(stored).hexdigest()}\nfile: {out}\n" in err
    assert not (data / "exports").exists() or not any((data / "exports").iterdir())

    assert main([*command, "-o", "-"]) == 0
    assert capsysbinary.readouterr().out == stored  # same rows, same bytes
