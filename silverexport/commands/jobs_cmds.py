"""`export`, `jobs` and `prune`: the actor system from the command line, no server needed."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..errors import ConflictError, ValidationError
from ..model import ExportFormat, ExportRequest, JobStatus, JobView
from ..system import ExportSystem
from .common import add_data_dir, settings_from

CLI_TENANT = "cli"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="run one export through the actor system")
    p.add_argument("dataset")
    p.add_argument("--format", required=True, choices=[f.value for f in ExportFormat])
    p.add_argument("--target-id")
    p.add_argument("--network")
    p.add_argument("--from", dest="from_", metavar="FROM", help="RFC 3339, inclusive")
    p.add_argument("--to", help="RFC 3339, exclusive")
    p.add_argument("--limit", type=int)
    p.add_argument("--gzip", action="store_true", help="gzip the file (not for parquet)")
    p.add_argument("-o", "--output", help="write the finished file here too ('-' for stdout)")
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long to wait for the job (default 3600); past it the job is cancelled "
        "and the command exits 1",
    )
    add_data_dir(p)
    p.set_defaults(handler=run_export)

    p = sub.add_parser("jobs", help="list jobs from the views")
    p.add_argument("--status", choices=[s.value for s in JobStatus])
    p.add_argument("--limit", type=int, default=None, help="at most this many (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    add_data_dir(p)
    p.set_defaults(handler=list_jobs)

    p = sub.add_parser("prune", help="expire jobs past retention now")
    add_data_dir(p)
    p.set_defaults(handler=prune)


def run_export(args: argparse.Namespace) -> int:
    if not args.timeout > 0:  # also refuses nan
        raise ValidationError("--timeout must be a positive number of seconds", field="timeout")
    request = ExportRequest(
        dataset=args.dataset,
        format=args.format,
        target_id=args.target_id,
        network=args.network,
        from_=args.from_,
        to=args.to,
        limit=args.limit,
        compression="gzip" if args.gzip else None,
    )
    output = None
    if args.output and args.output != "-":
        _check_writable(Path(args.output))  # before any job is recorded
        from .output_copy import OutputCopy  # only -o FILE needs it

        output = OutputCopy(Path(args.output), ExportFormat(args.format))
    try:
        # A one-shot process runs its own job only: orphans are for serving ones (SPEC §6).
        with ExportSystem.open(
            settings=settings_from(args),
            recover=False,
            export_fn=None if output is None else output.export_fn(),
        ) as system:
            return _export(system, request, args, output)
    finally:
        if output is not None:
            output.discard()  # a temporary copy never outlives the command


def _export(
    system: ExportSystem, request: ExportRequest, args: argparse.Namespace, output: Any
) -> int:
    job = system.submit(request, tenant=CLI_TENANT)
    view = _follow(system, job.job_id, args.timeout)
    if not view.status.terminal:
        view = _give_up(system, view, args.timeout)
        if view is None:
            return 1
    if view.status is not JobStatus.COMPLETED:
        print(f"job {view.job_id} {view.status}: {view.error or ''}", file=sys.stderr)
        return 1
    path = system.file_path(view)  # None when the store is remote (S3)
    if args.output == "-":
        _copy_out(system, view, sys.stdout.buffer)
    elif output is not None:
        output.finish(view, path, lambda out: _copy_out(system, view, out))
    stored = f"{system.storage.url.rstrip('/')}/{view.file_name}"
    print(
        f"job {view.job_id} completed: {view.rows} rows, {view.bytes} bytes, "
        f"sha256 {view.sha256}{' (truncated)' if view.truncated else ''}\n"
        f"file: {args.output if args.output and args.output != '-' else path or stored}",
        file=sys.stderr,
    )
    return 0


def _give_up(system: ExportSystem, view: JobView, timeout: float) -> JobView | None:
    """Past --timeout, cancel the job: this process runs it, so leaving it would only leave an
    interrupted job for some later serving process to restart. None once cancelled; the job's
    view if it finished just before the cancel could take effect."""
    try:
        system.cancel(view.job_id, tenant=CLI_TENANT)
    except ConflictError:
        return system.status(view.job_id)  # finished meanwhile: report it as usual
    print(
        f"silverexport: error: job {view.job_id} was still {view.status} after "
        f"--timeout {timeout:g} s; it has been cancelled",
        file=sys.stderr,
    )
    return None


def _copy_out(system: ExportSystem, view: JobView, out: BinaryIO) -> None:
    """The job's file from the export store (local or S3), a chunk at a time."""
    for chunk in system.file_chunks(view):
        out.write(chunk)


def _check_writable(output: Path) -> None:
    """-o names a file to create or replace in a directory we may write to."""
    folder = output.parent
    if output.is_dir():
        raise ValidationError(f"cannot write {output}: it is a directory", field="output")
    if not folder.is_dir():
        raise ValidationError(f"cannot write {output}: no directory {folder}", field="output")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValidationError(f"cannot write {output}: permission denied", field="output")


def _follow(system: ExportSystem, job_id: str, timeout: float) -> JobView:
    """Wait for the job, drawing rows and rows/s as the supervisor reports progress; the view
    when it is finished, or as it stands once `timeout` s have passed."""
    deadline = time.monotonic() + timeout
    with _progress_bar() as bar:
        while True:
            remaining = deadline - time.monotonic()
            try:
                view = system.wait(job_id, timeout=max(0.0, min(0.25, remaining)))
            except TimeoutError:
                view = system.status(job_id)
            if bar is not None:
                bar.update(max(0, view.rows - bar.n))
            if view.status.terminal or remaining <= 0:
                return view


def _progress_bar() -> Any:
    """A tqdm bar on a terminal, as tqdm's own `disable=None` decides; elsewhere none, and
    tqdm is not even imported, so that a scripted export starts sooner. Its lock is a thread
    lock: tqdm's default builds a multiprocessing one, which costs more than the bar."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    return tqdm(unit=" rows", unit_scale=True, file=sys.stderr, desc="export")


def list_jobs(args: argparse.Namespace) -> int:
    with ExportSystem.open(settings=settings_from(args), run_jobs=False) as system:
        views = _all_jobs(system, args.status, args.limit)
    for v in views:
        if args.json:
            doc = v.to_document() | {"tenant": v.tenant}
            sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
        else:
            print(
                f"{v.job_id}  {v.status:<9}  {v.dataset:<21} {v.format:<5} "
                f"rows={v.rows:<8} tenant={v.tenant}  created={v.created_at}"
            )
    if not views and not args.json:
        print("no jobs", file=sys.stderr)
    return 0


def _all_jobs(system: ExportSystem, status: str | None, most: int | None) -> list:
    """Newest first, page after page, up to `most` (all when None)."""
    views, cursor = [], None
    while most is None or len(views) < most:
        want = 500 if most is None else min(500, most - len(views))
        page, cursor = system.list(status=status, limit=want, cursor=cursor)
        views += page
        if cursor is None:
            break
    return views


def prune(args: argparse.Namespace) -> int:
    with ExportSystem.open(settings=settings_from(args), run_jobs=False) as system:
        expired = system.prune()
    for job_id in expired:
        print(job_id)
    print(f"expired {len(expired)} job(s)", file=sys.stderr)
    return 0
