"""`audit`, `verify` and `rebuild`: the event log seen from the command line (SPEC §6)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import orjson
from tqdm import tqdm

from ..errors import NotFoundError, ValidationError
from ..events.audit import histories, history, rebuild, states_at, verify
from ..events.backends import open_event_log, open_views
from ..events.log import EventLog
from ..events.types import RecordedEvent, public_data
from ..events.views import State, to_view
from ..timeutil import format_time, parse_rfc3339
from .common import add_data_dir, settings_from

PROGRESS_FROM = 10_000  # events; smaller logs rebuild faster than a bar can draw
# What a stream is, by its first event: the log holds jobs, webhooks and their deliveries.
_KINDS = {"WebhookRegistered": "webhook", "DeliveryScheduled": "delivery"}


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="replay the event log and print each job's history")
    audit.add_argument("job_id", nargs="?", metavar="JOB_ID", help="only this job")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.add_argument(
        "--at",
        metavar="SEQ_OR_TIME",
        help="instead, show the state of every job as of this seq or RFC 3339 time",
    )
    add_data_dir(audit)
    audit.set_defaults(handler=audit_command)

    check = subparsers.add_parser(
        "verify", help="check the hash chain, the append-only guard and the views"
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    add_data_dir(check)
    check.set_defaults(handler=verify_command)

    redo = subparsers.add_parser("rebuild", help="rebuild every view from the event log")
    add_data_dir(redo)
    redo.set_defaults(handler=rebuild_command)


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[EventLog]:
    """The data dir's existing log, as it is: these commands never create an empty one."""
    log = open_event_log(settings_from(args), create=False)
    try:
        yield log
    finally:
        log.close()


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


# -- audit -----------------------------------------------------------------------------------


def audit_command(args: argparse.Namespace) -> int:
    with _opened(args) as log, log.snapshot():
        if args.at is not None:
            return _audit_at(log, args)
        if args.job_id is not None:
            records = history(log, args.job_id)
            if not records:
                raise NotFoundError(f"no events for job {args.job_id}")
            jobs: Iterable[tuple[str, list[RecordedEvent]]] = [(args.job_id, records)]
        else:
            jobs = histories(log)
        if args.json:
            _print_histories_json(jobs)
        elif not _print_histories(jobs):
            print("the event log is empty")
    return 0


def _print_histories(jobs: Iterable[tuple[str, list[RecordedEvent]]]) -> int:
    n = 0
    for n, (job_id, records) in enumerate(jobs, 1):
        kind = _KINDS.get(records[0].type, "job") if records else "job"
        lines = [f"{kind} {job_id}", *("  " + describe(rec) for rec in records)]
        print(("\n" if n > 1 else "") + "\n".join(lines))
    return n


def _print_histories_json(jobs: Iterable[tuple[str, list[RecordedEvent]]]) -> None:
    """One JSON document, written a job at a time so a long log never sits in memory."""
    out = sys.stdout
    out.write('{"jobs": [')
    for n, (job_id, records) in enumerate(jobs):
        job = {"job_id": job_id, "events": [rec.to_document() for rec in records]}
        out.write(("," if n else "") + "\n  " + orjson.dumps(job).decode())
    out.write("\n]}\n")


def describe(rec: RecordedEvent) -> str:
    """One readable line: seq, version, time, type, and the event's non-empty fields."""
    data = " ".join(f"{k}={_short(v)}" for k, v in public_data(rec.event).items() if v is not None)
    return f"seq {rec.seq:>6}  v{rec.version:<3} {rec.recorded_at}  {rec.type:<13} {data}".rstrip()


def _short(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else repr(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return orjson.dumps({k: v for k, v in value.items() if v is not None}).decode()
    return str(value)


def _audit_at(log: EventLog, args: argparse.Namespace) -> int:
    at = args.at.strip()
    if at.isdigit():
        where = {"seq": int(at)}
        states = states_at(log, seq=int(at), job_id=args.job_id)
    else:
        try:
            canonical = format_time(parse_rfc3339(at))
        except ValueError as e:
            raise ValidationError(f"--at needs a seq or an RFC 3339 time: {e}") from None
        where = {"time": canonical}
        states = states_at(log, time=canonical, job_id=args.job_id)
    if args.job_id is not None and not states:
        raise NotFoundError(f"job {args.job_id} did not exist as of {at}")
    if args.json:
        _print_json({"as_of": where, "jobs": [_state_document(s) for s in states.values()]})
        return 0
    label = f"seq {where['seq']}" if "seq" in where else where["time"]
    print(f"as of {label}: {len(states)} jobs")
    for s in states.values():
        print(
            f"  {s['job_id']}  {s['status']:<9}  attempts={s['attempts']}  rows={s['rows']}  "
            f"v{s['version']}  last seq {s['last_seq']}"
        )
    return 0


def _state_document(state: State) -> dict:
    return {
        **to_view(state).to_document(),
        "tenant": state["tenant"],
        "version": state["version"],
        "last_seq": state["last_seq"],
    }


# -- verify and rebuild ----------------------------------------------------------------------


def verify_command(args: argparse.Namespace) -> int:
    with _opened(args) as log:
        report = verify(log, open_views(log, create=False))
    if args.json:
        _print_json(report.to_document())
    elif report.ok:
        print(
            f"OK: {report.events} events (up to seq {report.last_seq}), hash chain intact, "
            f"append-only guards present and effective, views of {report.jobs} jobs equal "
            "a fresh replay"
        )
    else:
        first = report.first_bad_seq
        print("FAILED" + (f": first bad seq {first}" if first else ""), file=sys.stderr)
        for p in report.problems:
            where = f"seq {p.seq}: " if p.seq is not None else ""
            print(f"  {p.check}: {where}{p.message}", file=sys.stderr)
    return 0 if report.ok else 1


def rebuild_command(args: argparse.Namespace) -> int:
    with _opened(args) as log:
        total = log.count()
        with tqdm(
            total=total,
            unit="event",
            unit_scale=True,
            desc="rebuild",
            file=sys.stderr,
            disable=total < PROGRESS_FROM,
        ) as bar:
            views = open_views(log)
            count = rebuild(log, views, lambda n: bar.update(n - bar.n))
        jobs = views.job_count()
    print(f"rebuilt the views of {jobs} jobs from {count} events")
    return 0
