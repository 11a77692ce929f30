"""Logs as SPEC §10 says: one line per request and per job state change, text or JSON lines.

`setup(format)` sends every record to stderr, as text or as one JSON object per line (`ts`,
`level`, `logger`, `msg`, and whatever `extra` a record carries, such as `job_id`).

The access log is the hot path: `logging` costs a LogRecord, a formatter and a flushed write
per request, which halved a server's requests per second. `AccessLog` formats each line with
one f-string (or one orjson call) and `BatchWriter` hands the lines of the last 50 ms to the
stream in a single write, under the logging handler's lock so that access lines and the
records other threads log never interleave mid-line. An access line is thus written up to
50 ms after its request ends, and at shutdown at the latest.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from typing import Any, TextIO

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "silverexport.access"
# Access lines wait this long at most before they are written, all in one write: a write
# per loop turn cost a busy server more than formatting its lines did.
FLUSH_SECONDS = 0.05
# A batch this large is written at once, without waiting for the timer.
_BATCH_LINES = 512
_JOB_PATH = re.compile(r"/v1/export/jobs/([0-9a-f]{32})(?:/|$)")
# What every LogRecord has; anything else on a record came from `extra=` and is logged too.
_now = time.time
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class _Clock:
    """Wall-clock text for log lines: the second formatted once per second, the line's text
    once per millisecond (a busy server logs several lines in each), not once per line."""

    def __init__(self) -> None:
        self._second = -1
        self._iso_second = self._text_second = ""
        self._iso_ms = self._text_ms = -1
        self._iso = self._text = ""

    def _seconds(self, second: int) -> None:
        self._second = second
        self._iso_second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._text_second = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))

    def iso(self, now: float) -> str:
        """RFC 3339 in UTC with milliseconds, as the project writes every time."""
        ms = int(now * 1000)
        if ms != self._iso_ms:
            if ms // 1000 != self._second:
                self._seconds(ms // 1000)
            self._iso_ms = ms
            self._iso = f"{self._iso_second}.{ms % 1000:03d}Z"
        return self._iso

    def text(self, now: float) -> str:
        """Local time as logging's default asctime writes it."""
        ms = int(now * 1000)
        if ms != self._text_ms:
            if ms // 1000 != self._second:
                self._seconds(ms // 1000)
            self._text_ms = ms
            self._text = f"{self._text_second},{ms % 1000:03d}"
        return self._text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, then the record's extras."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": self._clock.iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                document[name] = value
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(document, default=str).decode()


class TextFormatter(logging.Formatter):
    """logging's usual line; a record's job_id is appended when its message lacks it."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        job_id = getattr(record, "job_id", None)
        if job_id is not None and str(job_id) not in record.getMessage():
            head, newline, rest = line.partition("\n")  # keep a traceback below the line
            line = f"{head} job_id={job_id}{newline}{rest}"
        return line


def setup(log_format: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Send every record (INFO and up) to `stream` (stderr) in `log_format`; the handler."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


class BatchWriter:
    """Lines written from the event loop, flushed together `interval` seconds after the
    first of them (or at once when _BATCH_LINES are waiting)."""

    def __init__(self, handler: logging.StreamHandler, interval: float = FLUSH_SECONDS) -> None:
        self._handler = handler
        self.interval = interval
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, line: str) -> None:
        """Queue one line (with its newline); called on the event loop's thread."""
        pending = self._pending
        pending.append(line)
        if len(pending) >= _BATCH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._due)

    def _due(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write whatever is pending, now (the timer's job; and at shutdown)."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        handler = self._handler
        with handler.lock:
            try:
                handler.stream.write(text)
                handler.stream.flush()
            except (OSError, ValueError):
                pass  # stderr is closed or broken: nowhere left to say so, as for logging


def access_log_class(writer: BatchWriter, log_format: str) -> type[AbstractAccessLogger]:
    """The access_log_class for aiohttp's runner: it makes one per connection, so the
    writer and the format are bound here, on a class of their own."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, not {log_format!r}")
    base = JsonAccessLog if log_format == "json" else TextAccessLog
    return type(base.__name__, (base,), {"writer": writer, "clock": _Clock()})


class TextAccessLog(AbstractAccessLogger):
    """`<time> INFO silverexport.access: <ip> "<request line>" <status> <bytes> <secs>s "<UA>"`."""

    __slots__ = ()
    writer: BatchWriter
    clock: _Clock

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        v = request.version
        agent = request.headers.get("User-Agent", "-")
        # rel_url.raw_path_qs is path_qs (str(rel_url)) without building the string anew.
        self.writer.add(
            f"{self.clock.text(_now())} INFO {ACCESS_LOGGER}: {request.remote} "
            f'"{request.method} {request.rel_url.raw_path_qs} HTTP/{v.major}.{v.minor}" '
            f'{response.status} {response.body_length} {time:.6f}s "{agent}"\n'
        )


class JsonAccessLog(AbstractAccessLogger):
    """The same facts as one JSON object, with the job's id when the path names a job."""

    __slots__ = ()
    writer: BatchWriter
    clock: _Clock

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        v = request.version
        path = request.path
        line = f"{request.method} {request.rel_url.raw_path_qs} HTTP/{v.major}.{v.minor}"
        document = {
            "ts": self.clock.iso(_now()),
            "level": "info",
            "logger": ACCESS_LOGGER,
            "msg": f"{line} {response.status}",
            "remote": request.remote,
            "method": request.method,
            "path": path,
            "status": response.status,
            "bytes": response.body_length,
            "seconds": round(time, 6),
            "user_agent": request.headers.get("User-Agent"),
        }
        if match := _JOB_PATH.match(path):
            document["job_id"] = match.group(1)
        self.writer.add(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE).decode())
