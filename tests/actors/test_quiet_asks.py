"""A client's mistake handed back by an actor is not logged as a traceback; a bug still is."""

from __future__ import annotations

import logging

import pykka
import pytest

from silverexport.actors.quiet_asks import quiet_client_errors
from silverexport.errors import ConflictError, NotFoundError, ValidationError
from silverexport.model import ExportRequest


def returned(caplog) -> list[logging.LogRecord]:
    """pykka's records of an exception handed back to a caller."""
    return [
        r
        for r in caplog.records
        if r.name.startswith("pykka") and (r.exc_info or "Exception returned" in r.getMessage())
    ]


def test_client_errors_from_the_system_log_no_traceback(open_system, caplog):
    caplog.set_level(logging.DEBUG, logger="pykka")
    system = open_system()
    with pytest.raises(ValidationError, match="format"):
        system.submit_request(ExportRequest(dataset="token_transfers", format="xml"))
    with pytest.raises(NotFoundError):
        system.cancel("0" * 32)
    first = ExportRequest(dataset="token_transfers", format="csv")
    system.submit_request(first, idempotency_key="k")
    with pytest.raises(ConflictError, match="Idempotency-Key"):
        system.submit_request(
            ExportRequest(dataset="token_transfers", format="jsonl"), idempotency_key="k"
        )
    assert returned(caplog) == []
    assert "Traceback" not in caplog.text


class Raising(pykka.ThreadingActor):
    def on_receive(self, message):
        raise message


def test_a_bug_handed_back_keeps_its_traceback_a_client_error_does_not(caplog):
    quiet_client_errors()
    caplog.set_level(logging.DEBUG, logger="pykka")
    actor = Raising.start()
    try:
        with pytest.raises(ValidationError):
            actor.ask(ValidationError('"format" must be one of ...'), timeout=10)
        assert returned(caplog) == []
        with pytest.raises(RuntimeError):
            actor.ask(RuntimeError("a bug"), timeout=10)
    finally:
        actor.stop()
    [record] = returned(caplog)
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "Exception returned from" in record.getMessage() and "Traceback" in caplog.text
