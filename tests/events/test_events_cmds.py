"""`silverexport audit | verify | rebuild` on real data dirs."""

from __future__ import annotations

import sqlite3

import orjson
import pytest

from silverexport.__main__ import main
from silverexport.commands import events_cmds
from silverexport.events.sqlite_log import SqliteEventLog
from silverexport.events.types import JobStarted
from silverexport.events.views import ViewTables

from .lifecycles import drop_guards, forge, random_log, requested


@pytest.fixture
def data_dir(tmp_path):
    log = SqliteEventLog(tmp_path / "events.db")
    log.projector = ViewTables(log.db)
    log.append("j1", 0, requested(1, tenant="alice"))
    log.append("j2", 0, requested(2, tenant="bob"))
    log.append("j1", 1, JobStarted(attempt=1, owner="host 1"))
    log.close()
    return tmp_path


def test_audit_prints_each_job_s_history_one_line_per_event(data_dir, capsys):
    assert main(["audit", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    j1, j2 = out.split("\n\n")
    assert j1.startswith("job j1\n") and j2.startswith("job j2\n")
    lines = j1.splitlines()[1:]
    assert len(lines) == 2
    assert lines[0].split()[:5] == ["seq", "1", "v1", lines[0].split()[3], "JobRequested"]
    assert "tenant=alice" in lines[0] and 'filters={"target_id":"t1"}' in lines[0]
    assert "JobStarted" in lines[1] and "owner='host 1'" in lines[1]


def test_audit_of_one_job_as_json(data_dir, capsys):
    assert main(["audit", "j1", "--json", "--data-dir", str(data_dir)]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    [job] = doc["jobs"]
    assert job["job_id"] == "j1"
    assert [(e["seq"], e["version"], e["type"]) for e in job["events"]] == [
        (1, 1, "JobRequested"),
        (3, 2, "JobStarted"),
    ]
    assert job["events"][1]["data"] == {"attempt": 1, "owner": "host 1"}
    assert main(["audit", "--json", "--data-dir", str(data_dir)]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert [(j["job_id"], len(j["events"])) for j in doc["jobs"]] == [("j1", 2), ("j2", 1)]


def test_audit_of_an_empty_log(tmp_path, capsys):
    SqliteEventLog(tmp_path / "events.db").close()
    assert main(["audit", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "the event log is empty\n"
    assert main(["audit", "--json", "--data-dir", str(tmp_path)]) == 0
    assert orjson.loads(capsys.readouterr().out) == {"jobs": []}


def test_audit_of_an_unknown_job_is_an_error(data_dir, capsys):
    assert main(["audit", "nope", "--data-dir", str(data_dir)]) == 2
    assert "no events for job nope" in capsys.readouterr().err


def test_audit_at_a_seq(data_dir, capsys):
    assert main(["audit", "--at", "2", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("as of seq 2: 2 jobs")
    assert "j1  queued" in out
    assert main(["audit", "j1", "--at", "3", "--json", "--data-dir", str(data_dir)]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["as_of"] == {"seq": 3}
    assert [(j["job_id"], j["status"], j["tenant"]) for j in doc["jobs"]] == [
        ("j1", "running", "alice")
    ]


def test_audit_at_a_time(tmp_path, capsys):
    SqliteEventLog(tmp_path / "events.db").close()
    forge(
        tmp_path / "events.db",
        [
            ("j1", requested(1), "2026-11-01T10:00:00.000Z"),
            ("j1", JobStarted(attempt=1), "2026-11-01T12:00:00.000Z"),
        ],
    )
    argv = ["audit", "--json", "--data-dir", str(tmp_path), "--at", "2026-11-01T11:00:00Z"]
    assert main(argv) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["as_of"] == {"time": "2026-11-01T11:00:00.000Z"}
    assert [j["status"] for j in doc["jobs"]] == ["queued"]
    assert main(["audit", "--at", "yesterday", "--data-dir", str(tmp_path)]) == 2
    assert "--at needs a seq or an RFC 3339 time" in capsys.readouterr().err


def test_verify_says_ok(data_dir, capsys):
    assert main(["verify", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 3 events (up to seq 3), hash chain intact")
    assert "views of 2 jobs" in out


def test_verify_fails_naming_the_first_bad_seq(data_dir, capsys):
    drop_guards(data_dir / "events.db")
    raw = sqlite3.connect(data_dir / "events.db")
    raw.execute("UPDATE events SET stream_id = 'j3' WHERE seq = 2")
    raw.commit()
    raw.close()
    assert main(["verify", "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("FAILED: first bad seq 2\n")
    assert "chain: seq 2: hash does not match" in err
    assert "guards: append-only trigger events_no_update is missing" in err
    assert main(["verify", "--json", "--data-dir", str(data_dir)]) == 1
    doc = orjson.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["first_bad_seq"]) == (False, 2)


def test_rebuild_prints_the_count_and_shows_progress_on_large_logs(tmp_path, capsys, monkeypatch):
    log = SqliteEventLog(tmp_path / "events.db")
    log.projector = ViewTables(log.db)
    random_log(log, jobs=2500)
    events = log.count()
    log.close()
    monkeypatch.setattr(events_cmds, "PROGRESS_FROM", events // 2)  # "large", and fast
    assert main(["rebuild", "--data-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"rebuilt the views of 2500 jobs from {events} events\n"
    assert "rebuild: 100%" in captured.err
    assert main(["verify", "--data-dir", str(tmp_path)]) == 0
    monkeypatch.setattr(events_cmds, "PROGRESS_FROM", events + 1)
    assert main(["rebuild", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["audit", "verify", "rebuild"])
def test_a_data_dir_without_an_event_log_is_an_error_not_a_new_log(tmp_path, capsys, command):
    missing = tmp_path / "nowhere"
    assert main([command, "--data-dir", str(missing)]) == 2
    assert f"no event log at {missing / 'events.db'}" in capsys.readouterr().err
    assert not missing.exists()
