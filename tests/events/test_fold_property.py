"""Any valid history folds to the same views incrementally, in memory and from scratch."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silverexport.events.audit import rebuild
from silverexport.events.sqlite_log import SqliteEventLog
from silverexport.events.views import ViewTables, fold, fresh_states, normalised, replay

from .lifecycles import interleave, lifecycle


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_valid_history_folds_the_same_incrementally_and_from_scratch(data):
    def choose(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    jobs = data.draw(st.integers(1, 6), label="jobs")
    streams = {f"j{n}": lifecycle(n, choose, max_events=10)[0] for n in range(jobs)}
    in_flight = data.draw(st.integers(1, 4), label="in_flight")
    with tempfile.TemporaryDirectory() as tmp:  # one file per example, not per test
        log = SqliteEventLog(Path(tmp) / "events.db")
        views = ViewTables(log.db)
        log.projector = views
        try:
            in_memory: dict = {}
            for batch in interleave(streams, choose, in_flight):
                for rec in log.append_batch(batch):  # as the supervisor folds its own appends
                    in_memory[rec.stream_id] = fold(in_memory.get(rec.stream_id), rec)
            incremental = views.load_all()
            assert incremental == normalised(in_memory)
            assert incremental == normalised(fresh_states(log.read())[0])
            states, last, count = replay(log.read_batches(with_hash=False))
            assert (normalised(states), last, count) == (incremental, log.last_seq(), log.count())
            rebuild(log, views)
            assert views.load_all() == incremental
            assert views.checkpoint() == log.last_seq()
        finally:
            log.close()
