"""silverexport.logs in-process: both formatters on real records, the batch writer on a loop."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import pytest

from silverexport import logs

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
JOB = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def stream():
    """setup() on a StringIO; the root logger's handlers are put back afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = saved
    root.setLevel(level)


def test_json_lines_carry_ts_level_msg_and_the_job_id_of_a_job_record(stream):
    logs.setup("json", stream)
    logging.getLogger("silverexport.jobs").info(
        "job %s is %s", JOB, "running", extra={"job_id": JOB, "status": "running"}
    )
    logging.getLogger("silverexport.serve").warning("no job here")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert TS.fullmatch(first["ts"]) and first["level"] == "info"
    assert first["msg"] == f"job {JOB} is running" and first["logger"] == "silverexport.jobs"
    assert first["job_id"] == JOB and first["status"] == "running"
    assert second["level"] == "warning" and "job_id" not in second


def test_json_lines_keep_a_traceback_inside_the_one_line(stream):
    logs.setup("json", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("silverexport.jobs").exception("failed", extra={"job_id": JOB})
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert "RuntimeError: boom" in record["exc"] and record["job_id"] == JOB


def test_text_lines_name_the_job_when_the_message_does_not(stream):
    logs.setup("text", stream)
    jobs = logging.getLogger("silverexport.jobs")
    jobs.info("started", extra={"job_id": JOB})
    jobs.info("job %s completed", JOB, extra={"job_id": JOB})
    started, completed = stream.getvalue().splitlines()
    assert started.endswith(f"INFO silverexport.jobs: started job_id={JOB}")
    assert completed.endswith(f"INFO silverexport.jobs: job {JOB} completed")


def test_an_unknown_format_is_refused(stream):
    with pytest.raises(ValueError, match="xml"):
        logs.setup("xml", stream)


class Counting(io.StringIO):
    writes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)


async def wait_for_text(out: io.StringIO) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not out.getvalue():
        assert asyncio.get_running_loop().time() < deadline, "the lines were never written"
        await asyncio.sleep(0.01)


async def test_the_batch_writer_holds_lines_over_loop_turns_until_its_timer():
    out = Counting()
    writer = logs.BatchWriter(logging.StreamHandler(out), interval=3600)
    for i in range(10):
        writer.add(f"line {i}\n")
        await asyncio.sleep(0)  # loop turns in between: the lines wait for the interval
    assert out.getvalue() == ""
    writer.flush()  # at shutdown: whatever is pending, now, in one write
    assert out.getvalue() == "".join(f"line {i}\n" for i in range(10)) and out.writes == 1
    writer.flush()
    assert out.writes == 1  # nothing pending, nothing written


async def test_the_timer_writes_the_pending_lines_in_one_write():
    out = Counting()
    writer = logs.BatchWriter(logging.StreamHandler(out), interval=0.01)
    for i in range(10):
        writer.add(f"line {i}\n")
    await wait_for_text(out)
    assert out.getvalue() == "".join(f"line {i}\n" for i in range(10)) and out.writes == 1
    writer.add("again\n")  # a new timer for the next lines
    deadline = asyncio.get_running_loop().time() + 10
    while out.writes < 2:
        assert asyncio.get_running_loop().time() < deadline, "the line was never written"
        await asyncio.sleep(0.01)
    assert out.getvalue().endswith("line 9\nagain\n")


async def test_a_full_batch_is_written_at_once_and_the_timer_writes_the_rest():
    out = Counting()
    writer = logs.BatchWriter(logging.StreamHandler(out), interval=0.01)
    for i in range(logs._BATCH_LINES + 1):
        writer.add(f"{i}\n")
    assert out.writes == 1 and out.getvalue().count("\n") == logs._BATCH_LINES
    deadline = asyncio.get_running_loop().time() + 10
    while out.writes < 2:
        assert asyncio.get_running_loop().time() < deadline, "the last line was never written"
        await asyncio.sleep(0.01)
    assert out.getvalue().endswith(f"\n{logs._BATCH_LINES}\n") and out.writes == 2
