"""Audit: a job's history, every job's state as of a point in the log, verify, and rebuild.

All of it replays the log through the same `fold` the running system uses, so what audit shows
is what the system believed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import SilverExportError, StorageError, ValidationError
from ..timeutil import format_time, parse_rfc3339
from .log import EventLog
from .types import RecordedEvent, decode
from .views import State, ViewTables, fold, fresh_states, is_job_event, normalised, replay

Progress = Callable[[int], None]


def history(log: EventLog, job_id: str) -> list[RecordedEvent]:
    """Every event of one job, in order (empty if the log never heard of it)."""
    return list(log.read(stream_id=job_id))


def histories(log: EventLog) -> Iterator[tuple[str, list[RecordedEvent]]]:
    """(job id, history) of every job, in order of their requests; one job in memory at once.

    Call it inside `log.snapshot()` to see one state of a log that is being appended.
    """
    for job_id in log.stream_ids():
        yield job_id, history(log, job_id)


def states_at(
    log: EventLog,
    seq: int | None = None,
    time: str | None = None,
    *,
    job_id: str | None = None,
) -> dict[str, State]:
    """The state of every job (or of `job_id`) as of `seq`, or as of the recorded time `time`.

    "As of a time" is the prefix of the log appended up to that instant (the log stamps times
    that never go back): replay stops at the first event recorded later.
    """
    if seq is not None and time is not None:
        raise ValidationError("give a seq or a time, not both")
    records: Iterator[RecordedEvent] = log.read(stream_id=job_id, upto_seq=seq)
    if time is not None:
        try:
            cutoff = format_time(parse_rfc3339(time))
        except ValueError as e:
            raise ValidationError(f"not a time: {e}", field="time") from None
        records = _until(records, cutoff)
    states, _ = fresh_states(records)
    return states


def _until(records: Iterator[RecordedEvent], cutoff: str) -> Iterator[RecordedEvent]:
    for rec in records:
        if rec.recorded_at > cutoff:  # canonical UTC text sorts as time
            return
        yield rec


# -- verify ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of verify: which check, where, and why."""

    check: str  # "chain", "guards" or "views"
    message: str
    seq: int | None = None
    job_id: str | None = None


@dataclass(slots=True)
class VerifyReport:
    events: int = 0
    last_seq: int = 0
    jobs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    def to_document(self) -> dict:
        return {
            "ok": self.ok,
            "events": self.events,
            "last_seq": self.last_seq,
            "jobs": self.jobs,
            "first_bad_seq": self.first_bad_seq,
            "problems": [
                {"check": p.check, "seq": p.seq, "job_id": p.job_id, "message": p.message}
                for p in self.problems
            ],
        }


def verify(log: EventLog, views: ViewTables, progress: Progress | None = None) -> VerifyReport:
    """Check the hash chain, the append-only guards and the views; report every finding.

    Reads happen in one snapshot, so an append racing verify cannot look like a mismatch.
    """
    report = VerifyReport()
    with log.snapshot():
        report.events = log.count()
        report.last_seq = log.last_seq()
        broken = log.first_bad_seq(progress)
        if broken is not None:
            report.problems.append(Problem("chain", broken[1], seq=broken[0]))
        report.problems.extend(_check_views(log, views, report))
    report.problems.extend(_check_guards(log))
    return report


def _check_guards(log: EventLog) -> list[Problem]:
    """The triggers must exist and must refuse; probed on a throwaway row, rolled back."""
    problems = [
        Problem("guards", f"append-only trigger {name} is missing") for name in log.missing_guards()
    ]
    problems.extend(Problem("guards", message) for message in log.guard_problems())
    return problems


def _check_views(log: EventLog, views: ViewTables, report: VerifyReport) -> list[Problem]:
    fresh: dict[str, State] = {}
    last = 0
    for seq, job_id, version, type_, data, at, hash_ in log.read_raw():
        try:
            rec = RecordedEvent(seq, job_id, version, decode(type_, data), at, hash_)
            if is_job_event(type_):
                fresh[job_id] = fold(fresh.get(job_id), rec)
        except SilverExportError as e:
            return [Problem("views", f"the log does not replay: {e}", seq=seq, job_id=job_id)]
        last = seq
    report.jobs = len(fresh)
    try:
        checkpoint, stored = views.checkpoint(), views.load_all()
    except (sqlite3.OperationalError, StorageError) as e:  # e.g. tables dropped by hand
        return [Problem("views", f"the views cannot be read: {e}", seq=1 if last else None)]
    problems = []
    if checkpoint != last:
        problems.append(
            Problem(
                "views",
                f"the views' checkpoint is seq {checkpoint} but the log ends at seq {last}",
                seq=min(checkpoint, last) + 1,
            )
        )
    diff = first_difference(normalised(fresh), stored)
    if diff is not None:
        problems.append(diff)
    return problems


def first_difference(fresh: dict[str, State], stored: dict[str, State]) -> Problem | None:
    """The differing job whose last event comes first in the log, with the fields that differ."""
    differing = []
    for job_id in fresh.keys() | stored.keys():
        want, have = fresh.get(job_id), stored.get(job_id)
        if want == have:
            continue
        seq = (want or have or {}).get("last_seq")
        if want is None:
            why = "is in the views but not in the log"
        elif have is None:
            why = "is in the log but missing from the views"
        else:
            fields = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
            why = "differs from a fresh replay in " + ", ".join(
                f"{k} (views {have.get(k)!r}, replay {want.get(k)!r})" for k in fields
            )
        differing.append((seq or 0, job_id, why))
    if not differing:
        return None
    seq, job_id, why = min(differing)
    more = f" (and {len(differing) - 1} more jobs)" if len(differing) > 1 else ""
    return Problem("views", f"job {job_id} {why}{more}", seq=seq, job_id=job_id)


# -- rebuild ---------------------------------------------------------------------------------


def rebuild(log: EventLog, views: ViewTables, progress: Progress | None = None) -> int:
    """Drop the views and replay the whole log into them; return the number of events.

    One write transaction under the append lock from the first read to the last write: no
    append can slip in between the replay and the new checkpoint. Its commit need not be
    synced: the views are derived, and if power fails first, the old views come back whole
    with their own checkpoint, and start-up catch-up brings them up to date.
    """
    with log.exclusive(durable=False):
        states, last, count = replay(log.read_batches(with_hash=False), progress)
        views.replace_all(states, last, in_transaction=True)
    return count
