"""JobSupervisor: owns the queue, spawns ExportActors, and is this process's only log writer.

Every decision is an append with the stream's expected version; when another process got
there first the append fails, the supervisor catches up from the log and decides again.
Queued jobs are entries in a deque, not actors, so threads stay bounded by the slots.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka

from ..config import MAX_ATTEMPTS, Settings
from ..errors import ConcurrencyError, ConflictError, NotFoundError, SilverExportError
from ..events.log import Append, EventLog
from ..events.types import (
    Event,
    JobCancelled,
    JobCompleted,
    JobExpired,
    JobFailed,
    JobProgressed,
    JobRequested,
    JobStarted,
    RecordedEvent,
)
from ..events.views import State, ViewTables, fold, is_job_event, to_view
from ..model import JobStatus, JobView
from ..timeutil import now_text
from ..validation import check_request
from . import files
from .exporter import ExportActor, ExportFn
from .messages import (
    Cancel,
    CatchUp,
    Done,
    Failed,
    Progress,
    Prune,
    Run,
    Schedule,
    Submit,
    Tick,
)
from .owners import OwnerLock
from .slots import Side, Slots

log = logging.getLogger(__name__)

QUEUED, RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value
FINISHED = {JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value}


@dataclass(frozen=True, slots=True)
class Submitted:
    job: JobView
    created: bool


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop starting jobs and interrupt running exports; answers with their actor refs."""


@dataclass
class _Running:
    ref: pykka.ActorRef
    attempt: int
    cancel: threading.Event


class JobSupervisor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        settings: Settings,
        log_: EventLog,
        views: ViewTables,
        slots: Slots,
        owner: OwnerLock,
        publish: Callable[[JobView], None],
        export_fn: ExportFn | None = None,
        run_jobs: bool = True,
    ):
        super().__init__()
        self.run_jobs = run_jobs
        self.settings = settings
        self.log = log_
        self.views = views
        self.slots = slots
        self.owner = owner
        self.publish = publish
        self.export_fn = export_fn
        self.exports_dir: Path = settings.exports_dir
        self.states: dict[str, State] = {}
        self.seen_seq = 0
        self.queue: deque[str] = deque()
        self.queued: set[str] = set()
        self.active: set[str] = set()  # queued or running, anywhere
        self.expiries: list[tuple[str, str]] = []  # heap of (expires_at, job_id)
        self.idempotency: dict[tuple[str, str], str] = {}
        self.running: dict[str, _Running] = {}
        self.pending: list[Any] = []  # outcomes whose append failed; retried on Tick
        self.shutting_down = False
        self.next_sweep = 0.0
        self._load()

    # -- state ---------------------------------------------------------------------------

    def _load(self) -> None:
        """Start-up: catch the persisted views up with the log, then take them as our state."""
        self.views.catch_up(self.log.read)
        self.seen_seq = self.views.checkpoint()
        for state in self.views.load_all().values():
            self._track(state)
        self._recover_orphans()
        if self.run_jobs:
            self.sweep_stale_files()

    def _track(self, state: State) -> None:
        job_id = state["job_id"]
        self.states[job_id] = state
        status = state["status"]
        if status in (QUEUED, RUNNING):
            self.active.add(job_id)
        else:
            self.active.discard(job_id)
        if status in FINISHED and state["expires_at"]:
            heapq.heappush(self.expiries, (state["expires_at"], job_id))
        if state["idempotency_key"]:
            self.idempotency[(state["tenant"], state["idempotency_key"])] = job_id
        running = self.running.get(job_id)
        if running and not (status == RUNNING and state["attempts"] == running.attempt):
            running.cancel.set()  # cancelled (or taken over) elsewhere: stop between batches
        self.publish(to_view(state))

    def _apply(self, records: list[RecordedEvent]) -> None:
        for rec in records:
            self.seen_seq = rec.seq
            if is_job_event(rec.event.type):
                self._track(fold(self.states.get(rec.stream_id), rec))

    def _catch_up(self) -> int:
        records = list(self.log.read(self.seen_seq))
        self._apply(records)
        return len(records)

    def _append(self, job_id: str, *events: Event) -> State:
        """Append to one job's stream at the version we know; on conflict, catch up and raise."""
        state = self.states.get(job_id)
        version = state["version"] if state else 0
        try:
            records = self.log.append_batch([Append(job_id, version, events)])
        except ConcurrencyError:
            self._catch_up()
            raise
        if records[0].seq != self.seen_seq + 1:
            self._catch_up()  # another process appended in between: read it all in order
        else:
            self._apply(records)
        return self.states[job_id]

    def _retention(self) -> float:
        return float(self.settings.job_ttl_seconds)

    # -- messages ------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case Submit():
                return self._submit(message)
            case Cancel():
                return self._cancel(message)
            case Prune():
                return self._expire_due()
            case CatchUp():
                n = self._catch_up()
                self._schedule()
                return n
            case Shutdown():
                return self._shutdown()
        # Tells: an exception here would stop the actor, so failures are logged and the
        # outcome kept for a retry on the next Tick — never dropped.
        try:
            match message:
                case Progress():
                    self._progress(message)
                case Done() | Failed():
                    self._finish(message)
                case Tick():
                    self._tick()
                case Schedule():
                    self._schedule()
        except Exception:
            log.exception("supervisor could not handle %r; will retry", message)
            if isinstance(message, Done | Failed):
                self.pending.append(message)
        finally:
            if isinstance(message, Tick) and message.handled is not None:
                message.handled.set()
        return None

    def _submit(self, msg: Submit) -> Submitted:
        checked = check_request(
            msg.request, max_records=self.settings.max_records, digest=msg.digest
        )
        for _ in range(3):
            if msg.idempotency_key is not None:
                existing = self._find_idempotent(msg.tenant, msg.idempotency_key)
                if existing is not None:
                    if existing["request_digest"] != checked.digest:
                        raise ConflictError(
                            "this Idempotency-Key was already used with a different request",
                        )
                    return Submitted(to_view(existing), created=False)
            job_id = uuid.uuid4().hex
            event = JobRequested(
                tenant=msg.tenant,
                dataset=checked.dataset,
                format=checked.format.value,
                filters=checked.filters,
                limit=checked.limit,
                compression=checked.compression.value if checked.compression else None,
                idempotency_key=msg.idempotency_key,
                request_digest=checked.digest,
                max_records=self.settings.max_records,
                accepted_by=self.owner.owner_id,
            )
            # With a slot free and nobody waiting, the job starts in the same commit as its
            # request: one fsync fewer per job, and no trip through the queue.
            start_now = (
                self.run_jobs
                and not self.shutting_down
                and not self.queue
                and self.slots.try_acquire(Side.EXPORT)
            )
            events: list[Event] = [event]
            if start_now:
                events.append(JobStarted(attempt=1, owner=self.owner.owner_id))
            try:
                state = self._append(job_id, *events)
            except ConcurrencyError:
                if start_now:
                    self.slots.release(Side.EXPORT)
                continue  # most likely a racing submit with the same key: look again
            except BaseException:
                if start_now:
                    self.slots.release(Side.EXPORT)
                raise
            if start_now:
                self._spawn_safely(state)
            else:
                self._enqueue(job_id)
                self._schedule()
            return Submitted(to_view(state), created=True)
        raise ConflictError("the job could not be recorded; please retry")

    def _find_idempotent(self, tenant: str, key: str) -> State | None:
        job_id = self.idempotency.get((tenant, key))
        if job_id is None:
            self._catch_up()
            job_id = self.idempotency.get((tenant, key))
        return self.states.get(job_id) if job_id else None

    def _lookup(self, job_id: str, tenant: str | None) -> State:
        state = self.states.get(job_id)
        if state is None:
            self._catch_up()
            state = self.states.get(job_id)
        if state is None or (tenant is not None and state["tenant"] != tenant):
            raise NotFoundError(f"no job {job_id}")
        return state

    def _cancel(self, msg: Cancel) -> JobView:
        for _ in range(3):
            state = self._lookup(msg.job_id, msg.tenant)
            if state["status"] not in (QUEUED, RUNNING):
                raise ConflictError(f"the job is already {state['status']}")
            try:
                state = self._append(
                    msg.job_id,
                    JobCancelled(
                        reason="cancelled by request", retention_seconds=self._retention()
                    ),
                )
            except ConcurrencyError:
                continue
            return to_view(state)
        raise ConflictError("the job changed while it was being cancelled; please retry")

    def _progress(self, msg: Progress) -> None:
        state = self.states.get(msg.job_id)
        if state and state["status"] == RUNNING and state["attempts"] == msg.attempt:
            # On a conflict the job moved on elsewhere, and _track has told the actor to stop.
            with contextlib.suppress(ConcurrencyError):
                self._append(msg.job_id, JobProgressed(rows=msg.rows))

    def _finish(self, msg: Done | Failed) -> None:
        running = self.running.get(msg.job_id)
        if running is not None and running.attempt == msg.attempt:
            del self.running[msg.job_id]
            self.slots.release(Side.EXPORT)
        if self.shutting_down and isinstance(msg, Failed) and msg.cancelled:
            return  # interrupted by close(): the job stays running and resumes on next start
        state = self.states.get(msg.job_id)
        ours = (
            state is not None
            and state["status"] == RUNNING
            and state["attempts"] == msg.attempt
            and state["owner"] == self.owner.owner_id
        )
        if isinstance(msg, Done):
            event: Event = JobCompleted(
                rows=msg.rows,
                bytes=msg.bytes,
                sha256=msg.sha256,
                truncated=msg.truncated,
                file_name=msg.file_name,
                retention_seconds=self._retention(),
            )
        elif msg.cancelled:
            return  # JobCancelled is already in the log; the actor removed its part file
        else:
            event = JobFailed(
                error=msg.error,
                attempt=msg.attempt,
                will_retry=False,
                retention_seconds=self._retention(),
            )
        if ours:
            try:
                self._append(msg.job_id, event)
                return
            except ConcurrencyError:
                pass
        # Superseded (cancelled, or recovered by another process): the file is not ours to keep.
        if isinstance(msg, Done):
            state = self.states.get(msg.job_id)
            if not (
                state
                and state["status"] == JobStatus.COMPLETED.value
                and state["file_name"] == msg.file_name
            ):
                files.discard(self.exports_dir / msg.file_name)

    def _tick(self) -> None:
        self._catch_up()
        if not self.run_jobs:
            return  # bookkeeping only (listing, pruning): it changes nothing by itself
        self._retry_pending()
        self._recover_orphans()
        # Expiry looks at the head of a heap, so it runs every tick: a job expires within a
        # tick of its expires_at. Sweeping the export directory is the slower, rarer chore.
        self._expire_due()
        if time.monotonic() >= self.next_sweep:
            self.next_sweep = time.monotonic() + self.settings.expiry_interval_seconds
            self.sweep_stale_files()
        self._schedule()

    def _retry_pending(self) -> None:
        """Record the outcomes whose append failed before. One that fails again is kept for
        the next Tick, and does not stop the others (nor the rest of the Tick)."""
        pending, self.pending = self.pending, []
        for msg in pending:
            try:
                self._finish(msg)
            except Exception:
                log.exception("job %s: recording its outcome failed again; will retry", msg.job_id)
                self.pending.append(msg)

    # -- queue and spawning --------------------------------------------------------------

    def _enqueue(self, job_id: str) -> None:
        if job_id not in self.queued:
            self.queued.add(job_id)
            self.queue.append(job_id)

    def _schedule(self) -> None:
        """Start queued jobs while export slots are free. Never raises: a job that cannot be
        started now stays at the head of the queue for the next Tick."""
        while self.queue and self.run_jobs and not self.shutting_down:
            job_id = self.queue[0]
            state = self.states.get(job_id)
            if state is None or state["status"] != QUEUED:
                self.queue.popleft()
                self.queued.discard(job_id)
                continue
            if not self.slots.try_acquire(Side.EXPORT):
                return
            try:
                started = self._start(state)
            except Exception:
                log.exception("could not start job %s; will retry", job_id)
                self.slots.release(Side.EXPORT)
                return
            self.queue.popleft()
            self.queued.discard(job_id)
            if not started:
                self.slots.release(Side.EXPORT)

    def _start(self, state: State) -> bool:
        """Record the start and spawn the actor; False when the job needs no slot after all."""
        job_id = state["job_id"]
        attempt = state["attempts"] + 1
        if attempt > MAX_ATTEMPTS:
            self._append(
                job_id,
                JobFailed(
                    error=f"gave up after {MAX_ATTEMPTS} attempts",
                    attempt=state["attempts"],
                    will_retry=False,
                    retention_seconds=self._retention(),
                ),
            )
            return False
        try:
            state = self._append(job_id, JobStarted(attempt=attempt, owner=self.owner.owner_id))
        except ConcurrencyError:
            return False  # someone else started or cancelled it first
        self._spawn(state)
        return True

    def _spawn_safely(self, state: State) -> None:
        """Spawn for a job already recorded as started; if that fails, the start stays in the
        log without an actor, and the next Tick recovers it as an interrupted attempt."""
        try:
            self._spawn(state)
        except Exception:
            log.exception("could not start the export actor of job %s", state["job_id"])
            self.slots.release(Side.EXPORT)

    def _spawn(self, state: State) -> None:
        """One ExportActor for the attempt the log just recorded as started."""
        job_id, attempt = state["job_id"], state["attempts"]
        cancel = threading.Event()
        ref = ExportActor.start(
            supervisor=self.actor_ref,
            job=to_view(state),
            attempt=attempt,
            store_path=self.settings.silver_path,
            exports_dir=self.exports_dir,
            max_records=state["max_records"] or self.settings.max_records,
            cancel=cancel,
            progress_interval=self.settings.progress_interval_seconds,
            export_fn=self.export_fn,
        )
        self.running[job_id] = _Running(ref, attempt, cancel)
        ref.tell(Run())

    # -- crash recovery and retention ----------------------------------------------------

    def _recover_orphans(self) -> None:
        """Requeue jobs whose process died: interrupted runs count as an attempt."""
        if not self.run_jobs:
            return
        alive: dict[str | None, bool] = {}

        def owner_alive(owner: str | None) -> bool:
            if owner not in alive:
                alive[owner] = self.owner.is_alive(owner)
            return alive[owner]

        waiting = {msg.job_id for msg in self.pending}
        for job_id in sorted(self.active, key=lambda j: self.states[j]["created_at"]):
            state = self.states[job_id]
            if job_id in self.running or job_id in waiting:
                continue  # running here, or finished here with its outcome still to record
            mine = state["owner"] == self.owner.owner_id
            if state["status"] == QUEUED:
                if mine or not owner_alive(state["owner"]):
                    self._enqueue(job_id)
            elif state["status"] == RUNNING and (mine or not owner_alive(state["owner"])):
                attempt = state["attempts"]
                retry = attempt < MAX_ATTEMPTS
                files.remove_parts(self.exports_dir, job_id)
                try:
                    self._append(
                        job_id,
                        JobFailed(
                            error=f"interrupted: the process running attempt {attempt} stopped",
                            attempt=attempt,
                            will_retry=retry,
                            retention_seconds=None if retry else self._retention(),
                        ),
                    )
                except ConcurrencyError:
                    continue
                if retry:
                    self._enqueue(job_id)

    def _expire_due(self) -> list[str]:
        now = now_text()
        expired: list[str] = []
        while self.expiries and self.expiries[0][0] <= now:
            expires_at, job_id = heapq.heappop(self.expiries)
            state = self.states.get(job_id)
            if not state or state["status"] not in FINISHED or state["expires_at"] != expires_at:
                continue
            try:
                self._append(job_id, JobExpired(file_deleted=bool(state["file_name"])))
            except ConcurrencyError:
                continue
            except SilverExportError:
                heapq.heappush(self.expiries, (expires_at, job_id))
                raise
            # The event comes first: a crash (or a refused unlink) here leaves a file that
            # the sweeps remove.
            if state["file_name"]:
                files.discard(self.exports_dir / state["file_name"])
            expired.append(job_id)
        return expired

    def sweep_stale_files(self) -> None:
        """Remove the files of finished jobs that no one needs any more (parts of dead
        attempts, files of failed, cancelled and expired jobs). Runs at start and on the
        expiry timer.

        A removal can fail when it is first tried (an unwritable export directory refuses
        unlinks); this sweep, on the expiry timer, removes them once it can. Only jobs that
        are over are looked at: a queued or running job may be another process's, whose start
        this one has not read yet, and its files are that process's business.
        """
        try:
            paths = list(self.exports_dir.iterdir())
        except OSError as e:
            log.warning("could not list %s: %s", self.exports_dir, e)
            return
        for path in paths:
            job_id = path.name.split(".", 1)[0]
            state = self.states.get(job_id)
            if state is None or state["status"] in (QUEUED, RUNNING) or job_id in self.running:
                continue  # an attempt cancelled while it runs removes its own part
            if state["status"] == JobStatus.COMPLETED.value and path.name == state["file_name"]:
                continue
            files.discard(path)

    def _shutdown(self) -> list[pykka.ActorRef]:
        self.shutting_down = True
        for running in self.running.values():
            running.cancel.set()
        return [r.ref for r in self.running.values()]
