"""/healthz asks every backend the node needs: an export directory that cannot be written is
`export_storage` down (503, one line, Retry-After) until it can be again, the node never
restarted; concurrent probes share one round of checks, and a check that hangs is answered
for and not started again beside itself."""

from __future__ import annotations

import asyncio
import threading

import pytest

from silverexport.http.health import HEALTH_PROBE_SECONDS, Health

from .conftest import WAIT, healthz_until


@pytest.mark.file_storage  # the directory itself (a bucket: tests/http/test_storage_outage.py)
async def test_an_export_directory_that_is_a_file_is_export_storage_down(open_system, serve):
    system = open_system()
    exports = system.settings.exports_dir
    assert system.storage.url == exports.absolute().as_uri()
    client = await serve(system)
    assert await healthz_until(client, 200) == {"status": "ok"}
    moved = exports.with_name("moved")
    exports.rename(moved)
    exports.write_bytes(b"a file where the directory was")

    document = await healthz_until(client, 503)
    assert document["status"] == "degraded" and set(document["down"]) == {"export_storage"}
    reason = document["down"]["export_storage"]
    assert reason.startswith("SILVEREXPORT_STORAGE_URL (") and str(exports) in reason, reason
    assert "\n" not in reason
    exports.unlink()
    moved.rename(exports)
    assert await healthz_until(client, 200) == {"status": "ok"}


class CountedCheck:
    """A real check (the system's own) that counts its calls, and can be held mid-call."""

    def __init__(self, check) -> None:
        self.check = check
        self.calls = 0
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(self) -> object:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(WAIT)
        return self.check()


async def test_concurrent_probes_share_one_round_and_the_answer_is_kept(open_system):
    system = open_system()
    counted = CountedCheck(system.health_checks()["event_log"])
    health = Health({"event_log": counted})
    try:
        answers = await asyncio.gather(*(health.down() for _ in range(50)))
        assert answers == [{}] * 50 and counted.calls == 1
        assert await health.down() == {} and counted.calls == 1  # the kept answer
    finally:
        health.close()


async def test_a_hung_check_is_answered_for_and_not_started_again_beside_itself(open_system):
    system = open_system()
    counted = CountedCheck(system.health_checks()["event_log"])
    health = Health({"event_log": counted}, cache_seconds=0)  # every probe asks again
    late = {"event_log": f"no answer within {HEALTH_PROBE_SECONDS:g} s"}
    try:
        counted.release.clear()
        first = asyncio.ensure_future(health.down())
        assert await asyncio.to_thread(counted.entered.wait, WAIT)
        assert await first == late
        assert await health.down() == late
        assert counted.calls == 1  # the hung call was waited on again, not made again
        counted.release.set()  # the held call ends: the next probe hears from it, or asks anew
        assert await health.down() == {} and counted.calls in (1, 2)
    finally:
        counted.release.set()
        health.close()
