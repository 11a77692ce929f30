"""Settings.from_env: defaults, then SILVEREXPORT_* variables, then flags; bad values named."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest

from silverexport.config import Settings
from silverexport.errors import ValidationError
from tests.conftest import SUITE_KNOBS, project_settings_in

# A value for each setting that differs from its default and passes Settings.check together
# with the others. A setting added without a line here is still tested, by its type.
GIVEN = {
    "data_dir": ("/srv/exports data", Path("/srv/exports data")),
    "max_records": ("250", 250),
    "job_ttl_seconds": ("3600.5", 3600.5),
    "api_keys": ("alice:k1,bob:k2", "alice:k1,bob:k2"),
    "max_concurrent_exports": ("6", 6),
    "ingestion_reserve": ("3", 3),
    "export_reserve": ("2", 2),
    "slots_total": ("12", 12),
    "expiry_interval_seconds": ("30", 30.0),
    "catch_up_interval_seconds": ("0.25", 0.25),
    "progress_interval_seconds": ("0", 0.0),
    "max_body_bytes": ("1024", 1024),
    "stream_keepalive_seconds": ("5", 5.0),  # at most 15: default + 0.5 would be refused
    "log_format": ("json", "json"),
    "event_log_url": ("postgresql://u:pw@db.example:5432/ev",) * 2,
    "node_id": ("node-a.eu-1", "node-a.eu-1"),
}
NUMBERS = {"int", "float"}


def var(name: str) -> str:
    return f"SILVEREXPORT_{name.upper()}"


def type_name(field) -> str:
    return field.type if isinstance(field.type, str) else field.type.__name__


def given(field) -> tuple[str, object]:
    if field.name in GIVEN:
        return GIVEN[field.name]
    default = getattr(Settings(), field.name)
    kind = type_name(field)
    if kind == "int":
        return str(default + 1), default + 1
    if kind == "float":
        return str(default + 0.5), default + 0.5
    if kind == "Path":
        return "/srv/elsewhere", Path("/srv/elsewhere")
    return str(default), default


def test_no_variables_give_the_defaults():
    assert Settings.from_env({}) == Settings()


def test_every_setting_is_read_from_its_variable():
    env = {var(f.name): given(f)[0] for f in fields(Settings)}
    settings = Settings.from_env(env)
    for f in fields(Settings):
        assert getattr(settings, f.name) == given(f)[1], f.name
    assert settings != Settings()


@pytest.mark.parametrize("name", [f.name for f in fields(Settings)])
def test_each_variable_alone_changes_only_its_setting(name):
    field = next(f for f in fields(Settings) if f.name == name)
    if name in ("ingestion_reserve", "export_reserve", "slots_total"):
        env = {var(name): given(field)[0], var("slots_total"): "12"}  # room for the reserves
    else:
        env = {var(name): given(field)[0]}
    settings = Settings.from_env(env)
    assert getattr(settings, name) == given(field)[1]
    for other in fields(Settings):
        if var(other.name) not in env:
            assert getattr(settings, other.name) == getattr(Settings(), other.name), other.name


def test_without_an_env_it_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("SILVEREXPORT_MAX_RECORDS", "7")
    monkeypatch.setenv("SILVEREXPORT_DATA_DIR", "/srv/x")
    settings = Settings.from_env()
    assert (settings.max_records, settings.data_dir) == (7, Path("/srv/x"))


@pytest.mark.parametrize("name", [f.name for f in fields(Settings) if type_name(f) in NUMBERS])
@pytest.mark.parametrize("raw", ["ten", "1,5", "0x10", "5 rows", "nan-ish"])
def test_a_value_that_is_not_a_number_is_refused_by_name(name, raw):
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({var(name): raw})
    assert str(caught.value) == f"{var(name)} must be a number, got {raw!r}"


@pytest.mark.parametrize("name", [f.name for f in fields(Settings) if type_name(f) == "int"])
def test_an_integer_setting_refuses_a_fraction(name):
    with pytest.raises(ValidationError, match=f"^{var(name)} must be a number, got '2.5'$"):
        Settings.from_env({var(name): "2.5"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SILVEREXPORT_MAX_RECORDS": "0"}, "SILVEREXPORT_MAX_RECORDS must be at least 1"),
        (
            {"SILVEREXPORT_MAX_CONCURRENT_EXPORTS": "0"},
            "SILVEREXPORT_MAX_CONCURRENT_EXPORTS must be at least 1",
        ),
        ({"SILVEREXPORT_INGESTION_RESERVE": "-1"}, "slot reserves must not be negative"),
        ({"SILVEREXPORT_EXPORT_RESERVE": "-1"}, "slot reserves must not be negative"),
        (
            {"SILVEREXPORT_SLOTS_TOTAL": "2", "SILVEREXPORT_EXPORT_RESERVE": "1"},
            "SILVEREXPORT_EXPORT_RESERVE + SILVEREXPORT_INGESTION_RESERVE exceed the 2 slots",
        ),
        ({"SILVEREXPORT_JOB_TTL_SECONDS": "-1"}, "SILVEREXPORT_JOB_TTL_SECONDS must not be"),
        ({"SILVEREXPORT_LEASE_SECONDS": "0.5"}, "SILVEREXPORT_LEASE_SECONDS must be between"),
        ({"SILVEREXPORT_LEASE_SECONDS": "-15"}, "SILVEREXPORT_LEASE_SECONDS must be between"),
        ({"SILVEREXPORT_LEASE_SECONDS": "1e9"}, "SILVEREXPORT_LEASE_SECONDS must be between"),
        ({"SILVEREXPORT_NODE_ID": "node a"}, "SILVEREXPORT_NODE_ID must be 1 to 128"),
        ({"SILVEREXPORT_NODE_ID": "../etc"}, "SILVEREXPORT_NODE_ID must be 1 to 128"),
        ({"SILVEREXPORT_NODE_ID": "a/b"}, "SILVEREXPORT_NODE_ID must be 1 to 128"),
        ({"SILVEREXPORT_NODE_ID": "x" * 129}, "SILVEREXPORT_NODE_ID must be 1 to 128"),
    ],
)
def test_values_out_of_range_are_refused_by_name(env, message):
    with pytest.raises(ValidationError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(message)


def test_node_settings_default_and_accept_plain_ids():
    assert (Settings().node_id, Settings().lease_seconds) == ("", 15.0)
    for node_id in ("a", "node-1", "host.example.com-4242", "eu1:node@rack2", "N" * 128):
        assert Settings.from_env({"SILVEREXPORT_NODE_ID": node_id}).node_id == node_id
    assert Settings.from_env({"SILVEREXPORT_LEASE_SECONDS": "2"}).lease_seconds == 2.0


def test_a_long_bad_node_id_is_not_echoed_whole():
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"SILVEREXPORT_NODE_ID": "bad id " * 100})
    assert len(str(caught.value)) < 200


def test_flags_win_over_variables_and_an_absent_flag_does_not():
    env = {"SILVEREXPORT_MAX_RECORDS": "5", "SILVEREXPORT_DATA_DIR": "/srv/env"}
    settings = Settings.from_env(env, max_records=9, data_dir=None)
    assert settings.max_records == 9
    assert settings.data_dir == Path("/srv/env")  # None is a flag not given


def test_a_flag_is_checked_like_a_variable():
    with pytest.raises(ValidationError, match="SILVEREXPORT_MAX_RECORDS must be at least 1"):
        Settings.from_env({}, max_records=0)


@pytest.mark.parametrize("name", [f.name for f in fields(Settings)])
def test_an_empty_variable_is_ignored(name):
    assert Settings.from_env({var(name): ""}) == Settings()


def test_unknown_and_differently_cased_variables_are_ignored():
    env = {"SILVEREXPORT_MAX_RECORD": "1", "silverexport_max_records": "1", "MAX_RECORDS": "1"}
    assert Settings.from_env(env) == Settings()


def test_the_suite_knobs_are_no_settings_and_the_caller_s_settings_are_gone():
    """The autouse fixture removes what the project would read; it keeps the suite's knobs."""
    assert not SUITE_KNOBS & {var(f.name) for f in fields(Settings)}
    assert project_settings_in(os.environ) == []
    assert Settings.from_env() == Settings()
