"""JobSupervisor: owns the queue, spawns ExportActors, and is this process's only log writer.

Every decision is an append with the stream's expected version; when another process got
there first the append fails, the supervisor catches up from the log and decides again.
Queued jobs are entries in a queue, not actors, so threads stay bounded by the slots: a
FairQueue of the jobs this process queued, or, for the nodes of one PostgreSQL log, a
SharedQueue of every queued job of the service, which any node with a free slot may start.
Outcomes (outcomes.py) and starts (launching.py) are the mixins' halves of the work.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from ..config import Settings
from ..errors import (
    ConcurrencyError,
    ConflictError,
    NotFoundError,
    QueueFullError,
    StorageError,
)
from ..events.log import EventLog
from ..events.types import (
    Event,
    JobCancelled,
    JobRequested,
    JobStarted,
)
from ..events.views import State, ViewTables, to_view
from ..model import JobView
from ..nodes import Liveness
from ..silver.port import SilverBackend
from ..storage import ExportStorage
from ..validation import check_request
from . import recovery
from .exporter import ExportActor, ExportFn
from .fair_queue import FairQueue, JobQueue
from .job_book import ACTIVE, RUNNING, JobBook
from .launching import Launching, Running
from .messages import (
    Cancel,
    CatchUp,
    Done,
    Failed,
    Load,
    Progress,
    Prune,
    Schedule,
    Submit,
    Tick,
    Wake,
)
from .outcomes import Outcomes
from .slots import Side, Slots

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Submitted:
    job: JobView
    created: bool


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop starting jobs and interrupt running exports; answers with their actor refs."""


class JobSupervisor(Launching, Outcomes, pykka.ThreadingActor):
    """`run_jobs=False`: bookkeeping only. `recover=False`: runs the jobs submitted here and no
    other process's (a one-shot export); a serving process recovers orphans."""

    use_daemon_thread = True  # never what keeps a process from exiting (see exit_close.py)

    def __init__(
        self,
        *,
        settings: Settings,
        log_: EventLog,
        views: ViewTables,
        slots: Slots,
        owner: Liveness,
        publish: Callable[[JobView], None],
        queue: JobQueue | None = None,
        export_fn: ExportFn | None = None,
        run_jobs: bool = True,
        recover: bool = True,
        exporter: type[ExportActor] = ExportActor,
        storage: ExportStorage | None = None,
        silver: SilverBackend | None = None,
    ):
        super().__init__()
        self.run_jobs = run_jobs
        self.recover = recover
        self.settings = settings
        self.slots = slots
        self.owner = owner
        self.export_fn = export_fn
        self.exporter = exporter
        # Where the files live (SILVEREXPORT_STORAGE_URL); the system owns and closes it.
        self.storage = storage if storage is not None else settings.open_storage()
        # The Silver store the exports read (SILVEREXPORT_SILVER_URL); None: the SQLite file.
        self.silver = silver
        self.book = JobBook(log_, views, publish=publish, changed=self._changed)
        self.queue = queue if queue is not None else FairQueue()
        self.running: dict[str, Running] = {}
        self.start_failures: Counter[str] = Counter()
        self.pending: list[Any] = []  # outcomes whose append failed; retried on Tick
        self.shutting_down = False
        self.next_sweep = 0.0
        self.unreachable: str | None = None  # why the log is out of reach, while it is
        self.outage_logged = False  # one line when an outage starts, one when it ends

    def _changed(self, state: State) -> None:
        """A job's state moved (here or elsewhere): keep the queue and our actors in step."""
        job_id, status = state["job_id"], state["status"]
        self.queue.observe(state)
        running = self.running.get(job_id)
        if running and not (status == RUNNING and state["attempts"] == running.attempt):
            running.cancel.set()  # cancelled (or taken over) elsewhere: stop between batches

    def _retention(self) -> float:
        return float(self.settings.job_ttl_seconds)

    # -- messages ------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case Load():
                return self._load()
            case Submit():
                return self._submit(message)
            case Cancel():
                return self._cancel(message)
            case Prune():
                return recovery.expire_due(self.book, self.storage)
            case CatchUp():
                n = self._catch_up()
                self._schedule()
                return n
            case Shutdown():
                return self._shutdown()
        # Tells: an exception here would stop the actor, so failures are logged and the
        # outcome kept for a retry on the next Tick — never dropped. The log out of reach
        # (its database stopped) is expected to pass: one line when it starts, not a
        # traceback per message.
        try:
            match message:
                case Progress():
                    self._progress(message)
                case Done() | Failed():
                    self._finish(message)
                case Tick():
                    self._tick()
                case Wake():
                    message.pending.clear()  # news arriving from now on asks for another
                    self._catch_up()
                    self._schedule()
                case Schedule():
                    self._schedule()
        except Exception as e:
            if isinstance(e, StorageError):
                self._log_unreachable(e)
            else:
                log.exception("supervisor could not handle %r; will retry", message)
            if isinstance(message, Done | Failed):
                self.pending.append(message)
        finally:
            if isinstance(message, Tick):
                self._log_if_reachable()
                if message.handled is not None:
                    message.handled.set()
        return None

    def _load(self) -> None:
        """Start-up: the views caught up, the active jobs held, our own (or orphans) queued."""
        self.book.load()
        if self.run_jobs:
            self._recover_orphans()
            if self.recover:
                self.sweep_stale_files()

    def _submit(self, msg: Submit) -> Submitted:
        checked = check_request(
            msg.request, max_records=self.settings.max_records, digest=msg.digest
        )
        for _ in range(3):
            if msg.idempotency_key is not None:
                existing = self.book.find_idempotent(msg.tenant, msg.idempotency_key)
                if existing is not None:
                    if existing["request_digest"] != checked.digest:
                        raise ConflictError(
                            "this Idempotency-Key was already used with a different request",
                        )
                    return Submitted(to_view(existing), created=False)
            # With a slot free and nobody waiting, the job starts in the same commit as its
            # request: one fsync fewer per job, and no trip through the queue.
            start_now = (
                self.run_jobs
                and not self.shutting_down
                and not self.queue
                and self.slots.try_acquire(Side.EXPORT)
            )
            cap = self.settings.max_queued_per_tenant
            if not start_now and self.book.queued(msg.tenant) >= cap:
                raise QueueFullError(
                    f"tenant {msg.tenant} already has {cap} jobs queued, the most allowed; "
                    "retry once some have started"
                )
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
            events: list[Event] = [event]
            if start_now:
                events.append(JobStarted(attempt=1, owner=self.owner.owner_id))
            try:
                state = self.book.append(job_id, *events)
            except ConcurrencyError:
                if start_now:
                    self.slots.release(Side.EXPORT)
                continue  # most likely a racing submit with the same key: look again
            except BaseException:
                if start_now:
                    self.slots.release(Side.EXPORT)
                raise
            if start_now:
                self._spawn_or_fail(state)
            else:
                self.queue.push(msg.tenant, job_id)
                self._schedule()
            return Submitted(to_view(state), created=True)
        raise ConflictError("the job could not be recorded; please retry")

    def _lookup(self, job_id: str, tenant: str | None) -> State:
        state = self.book.get(job_id)
        if state is None or (tenant is not None and state["tenant"] != tenant):
            raise NotFoundError(f"no job {job_id}")
        return state

    def _cancel(self, msg: Cancel) -> JobView:
        for _ in range(3):
            state = self._lookup(msg.job_id, msg.tenant)
            if state["status"] not in ACTIVE:
                raise ConflictError(f"the job is already {state['status']}")
            try:
                state = self.book.append(
                    msg.job_id,
                    JobCancelled(
                        reason="cancelled by request", retention_seconds=self._retention()
                    ),
                )
            except ConcurrencyError:
                continue
            return to_view(state)
        raise ConflictError("the job changed while it was being cancelled; please retry")

    def _log_unreachable(self, error: StorageError) -> None:
        """Starts wait until the log reads again; logged once per outage, not per retry."""
        if not self.outage_logged:
            log.warning("the event log is out of reach; retrying every tick: %s", error)
            self.outage_logged = True
        self.unreachable = str(error)

    def _log_if_reachable(self) -> None:
        """After a Tick: one that nothing failed in ends the outage, in the log too."""
        if self.outage_logged and self.unreachable is None:
            self.outage_logged = False
            log.warning("the event log answers again; its outcomes recorded, its queue running")

    def _catch_up(self) -> int:
        """Read what the log gained; a read that works lets writes (retries, starts) try."""
        n = self.book.catch_up()
        self.unreachable = None
        return n

    def _tick(self) -> None:
        self._catch_up()
        if not self.run_jobs:
            return  # bookkeeping only (listing, pruning): it changes nothing by itself
        self._retry_pending()
        self._recover_orphans()
        if self.recover:
            # Expiry looks at the views' index of due jobs, so it runs every tick: a job
            # expires within a tick of its expires_at. Sweeping files is the rarer chore.
            recovery.expire_due(self.book, self.storage)
            if time.monotonic() >= self.next_sweep:
                self.next_sweep = time.monotonic() + self.settings.expiry_interval_seconds
                self.sweep_stale_files()
        self._schedule()

    # -- crash recovery and retention ----------------------------------------------------

    def _recover_orphans(self) -> None:
        if not self.run_jobs:
            return
        recovery.recover_orphans(
            self.book,
            self.owner,
            storage=self.storage,
            busy=self.running.keys() | {msg.job_id for msg in self.pending},
            enqueue=self.queue.push,
            retention=self._retention(),
            everyone=self.recover,
        )

    def sweep_stale_files(self) -> None:
        recovery.sweep_stale_files(self.book, self.storage, self.running.keys())

    def _shutdown(self) -> list[pykka.ActorRef]:
        self.shutting_down = True
        for running in self.running.values():
            running.cancel.set()
        return [r.ref for r in self.running.values()]
