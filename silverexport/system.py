"""ExportSystem: the composition root — opens the log, views, Silver store and actors.

The CLI, the HTTP server, tests and embedding ingestion processes all start here.
Its helpers have modules of their own: view_reads.py (the reads of the persisted views and
the log), job_pages.py (one page of the jobs list), thread_readers.py (a read connection per
thread) and supervisor_clock.py (the Tick timer and the Wake and Schedule nudges).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pykka

from .actors.exporter import ExportFn
from .actors.fair_queue import FairQueue
from .actors.messages import Cancel, CatchUp, Load, Prune, Submit, Tick
from .actors.quiet_asks import quiet_client_errors
from .actors.shared_queue import SharedQueue
from .actors.slots import Slots
from .actors.supervisor import JobSupervisor, Shutdown, Submitted
from .config import Settings
from .errors import NotFoundError, StorageError
from .events.backends import open_event_log, open_views
from .events.types import RecordedEvent
from .exit_close import close_at_exit, forget
from .job_view_cache import RECENT_VIEWS, JobViewCache
from .metrics import MeteredLog, Metrics
from .model import ExportRequest, JobStatus, JobView
from .nodes import Wakeup, open_liveness, open_wakeup
from .silver.backends import open_silver_store
from .storage import ExportStorage, ExportStorageError, check_at_start
from .supervisor_clock import SupervisorClock
from .thread_readers import ThreadReaders
from .validation import check_request
from .view_reads import PersistedReads
from .webhooks import Resolver, WebhookService

log = logging.getLogger(__name__)

ASK_TIMEOUT = 60.0

quiet_client_errors()  # a client's 4xx is not worth a pykka traceback in the log


class ExportSystem(PersistedReads):
    """A running export system on one data directory. Use as a context manager.

    Its reads of the persisted views and of the log (history, the jobs list, counts) are in
    view_reads.py; here are the opening, the closing, and what goes through the supervisor."""

    def __init__(
        self,
        settings: Settings,
        *,
        export_fn: ExportFn | None = None,
        run_jobs: bool = True,
        recover: bool = True,
        webhook_resolver: Resolver | None = None,
        deliver_webhooks: bool | None = None,
    ):
        self.settings = settings
        self._closed = False
        self.views = JobViewCache(RECENT_VIEWS)
        self._readers: ThreadReaders | None = None
        self._metrics_lock = threading.Lock()
        # The nodes of one PostgreSQL log start each other's queued jobs (SPEC §5, §8); a
        # SQLite log's serving process, and a one-shot command anywhere, only their own.
        self.queue: FairQueue | SharedQueue = (
            SharedQueue() if settings.event_log_url and run_jobs and recover else FairQueue()
        )
        self._clock: SupervisorClock | None = None
        self._wakeup: Wakeup | None = None
        self.supervisor: pykka.ActorRef | None = None
        self.store = self.log = self.owner = None  # type: ignore[assignment]
        self.storage: ExportStorage | None = None
        self.webhooks: WebhookService | None = None
        self._webhook_resolver = webhook_resolver
        self._metrics: Metrics | None = None
        # A one-shot process leaves deliveries to serving ones, as it leaves their jobs.
        self._deliver_webhooks = (
            run_jobs and recover if deliver_webhooks is None else deliver_webhooks
        )
        try:
            self._open(export_fn=export_fn, run_jobs=run_jobs, recover=recover)
        except BaseException:
            self.close()  # a failed open leaves nothing behind: actors, threads, locks, files
            raise
        close_at_exit(self)  # left open (no close(), an exception before it): closed at exit

    def _open(self, **supervisor_options: Any) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Export files go through the storage port (SILVEREXPORT_STORAGE_URL).
        self.storage = settings.open_storage()
        try:
            if getattr(self.storage, "path", None) is None:
                check_at_start(self.storage)  # a bucket out of reach stops us here
            else:  # a directory that refuses writes fails each job with the reason instead
                Path(self.storage.directory).mkdir(parents=True, exist_ok=True)
        except ExportStorageError as e:
            raise StorageError(str(e)) from None
        except OSError as e:  # no directory can be made there (a file in the way, say)
            raise StorageError(
                f"SILVEREXPORT_STORAGE_URL ({self.storage.url}): cannot create the directory: "
                f"{e.strerror or e}"
            ) from None
        # A bad SILVEREXPORT_SILVER_URL or an unreachable database stops us here, in one line.
        self.store = open_silver_store(settings)
        self.slots = Slots(
            settings.total_slots,
            export_reserve=settings.export_reserve,
            ingestion_reserve=settings.ingestion_reserve,
            export_cap=settings.max_concurrent_exports,
        )
        # Liveness, chosen with the log: a lock file beside SQLite, a lease in PostgreSQL.
        self.owner = open_liveness(
            settings, serving=supervisor_options["run_jobs"] and supervisor_options["recover"]
        )
        if supervisor_options["run_jobs"] and supervisor_options["recover"]:
            self._metrics = self.metrics  # a serving process counts from its first append
        # Timed appends, and the jobs they finish, are counted outside events/ (SPEC §10).
        # A bad URL or an unreachable database stops us here, with one line naming the setting.
        self.log = MeteredLog(open_event_log(settings), self._appended)
        self.log.projector = open_views(self.log.inner)
        self._readers = ThreadReaders(self.log)
        self.supervisor = JobSupervisor.start(
            settings=settings,
            log_=self.log,
            views=self.log.projector,
            slots=self.slots,
            owner=self.owner,
            publish=self._publish,
            queue=self.queue,
            storage=self.storage,
            silver=self.store,
            **supervisor_options,
        )
        self._clock = SupervisorClock(
            self.supervisor,
            interval=max(
                0.05, min(settings.catch_up_interval_seconds, settings.expiry_interval_seconds)
            ),
        )
        self._ask(Load())
        self._wakeup = open_wakeup(settings, self._clock.wake)  # other nodes' appends, promptly
        # Webhook deliveries run beside the supervisor, never through it (SPEC §9).
        self.webhooks = WebhookService(
            settings,
            owner_id=self.owner.owner_id,
            is_alive=self.owner.is_alive,
            resolver=self._webhook_resolver,
            on_outcome=lambda outcome: self.metrics.webhook_deliveries.labels(outcome).inc(),
        )
        if self._deliver_webhooks:
            self.webhooks.start()
        self.slots.on_release(self._clock.slot_released)
        self._clock.start()
        self._ask(Tick())

    @classmethod
    def open(
        cls,
        data_dir: str | Path | None = None,
        *,
        max_concurrent_exports: int | None = None,
        settings: Settings | None = None,
        export_fn: ExportFn | None = None,
        run_jobs: bool = True,
        recover: bool = True,
        webhook_resolver: Resolver | None = None,
        deliver_webhooks: bool | None = None,
        **overrides: Any,
    ) -> ExportSystem:
        """Open (creating if needed) the system on `data_dir`; settings come from the
        SILVEREXPORT_* environment unless given.

        `run_jobs=False` opens it for bookkeeping only (listing, pruning): it records and
        reads, but starts no export and recovers no job, leaving that to a serving process.
        `recover=False` is for a short-lived process (the CLI's `export`): it runs the jobs
        submitted through it and nothing else — other processes' queued or interrupted jobs,
        expiry and the file sweeps are left to serving processes.
        `deliver_webhooks` (default: as `run_jobs`) says whether this process makes webhook
        deliveries; `webhook_resolver` replaces the system's DNS for webhook hosts.
        """
        if settings is None:
            settings = Settings.from_env(
                data_dir=Path(data_dir) if data_dir is not None else None,
                max_concurrent_exports=max_concurrent_exports,
                **overrides,
            )
        return cls(
            settings,
            export_fn=export_fn,
            run_jobs=run_jobs,
            recover=recover,
            webhook_resolver=webhook_resolver,
            deliver_webhooks=deliver_webhooks,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> ExportSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every actor and thread this system started. Running exports are interrupted
        and resume (as a new attempt) when the data dir is next opened. Also undoes a
        half-done open, whatever it got to. One left open is closed as the interpreter exits
        (see exit_close.py)."""
        if self._closed:
            return
        self._closed = True
        forget(self)
        steps = [
            (self._clock, "signal_stop"),
            (self._wakeup, "close"),
            (self._clock, "join"),
            (self.webhooks, "close"),
            (None if self.supervisor is None else self, "_stop_actors"),
            (self.log, "close"),
            (self._readers, "close"),
            (self.store, "close"),
            (self.storage, "close"),
            (self.owner, "release"),
        ]
        # Every step runs even when one before it fails: a connection that will not close must
        # not keep the owner lock held or the Silver store open. The first failure is raised.
        failure: BaseException | None = None
        for part, method in steps:
            if part is None:
                continue  # never opened
            try:
                getattr(part, method)()
            except Exception as e:
                if failure is None:
                    failure = e
                else:
                    log.warning(
                        "closing the export system: %s.%s also failed: %s",
                        type(part).__name__,
                        method,
                        e,
                    )
        if failure is not None:
            raise failure

    def _stop_actors(self) -> None:
        """The supervisor's export actors, then the supervisor (exports interrupted)."""
        if self._clock is not None:
            self.slots.remove_listener(self._clock.slot_released)
        with contextlib.suppress(pykka.ActorDeadError):
            refs = self.supervisor.ask(Shutdown(), timeout=ASK_TIMEOUT)
            for ref in refs:
                ref.stop(block=True, timeout=ASK_TIMEOUT)
        with contextlib.suppress(pykka.ActorDeadError):
            self.supervisor.stop(block=True, timeout=ASK_TIMEOUT)

    def _ask(self, message: Any) -> Any:
        return self.supervisor.ask(message, timeout=ASK_TIMEOUT)

    @property
    def metrics(self) -> Metrics:
        """This system's Prometheus metrics. A serving process builds them as it opens; a
        one-shot one (the CLI's `export`) only if asked, and counts appends from then on:
        prometheus_client and the registry were a tenth of a short export's start-up."""
        with self._metrics_lock:
            if self._metrics is None:
                self._metrics = Metrics(job_counts=self.job_counts, slots=self.slots)
            return self._metrics

    def _appended(self, records: list[RecordedEvent], seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.observe_append(records, seconds, self.views.active.get)

    def _publish(self, view: JobView) -> None:
        """The supervisor's news of a job (see JobViewCache)."""
        self.views.publish(view)

    # -- the API -------------------------------------------------------------------------

    def submit(
        self,
        request: ExportRequest,
        *,
        tenant: str = "default",
        idempotency_key: str | None = None,
    ) -> JobView:
        """Record a new export job (durably, before returning) and queue it."""
        return self.submit_request(request, tenant=tenant, idempotency_key=idempotency_key).job

    def submit_request(
        self,
        request: ExportRequest,
        *,
        tenant: str = "default",
        idempotency_key: str | None = None,
        digest: str | None = None,
    ) -> Submitted:
        """Like submit(), also saying whether a new job was created or an idempotent one found."""
        check_request(request, max_records=self.settings.max_records)  # 400s skip the actor
        submitted = self._ask(Submit(request, tenant, idempotency_key, digest))
        return replace(submitted, job=self._positioned(submitted.job))

    def status(self, job_id: str, *, tenant: str | None = None) -> JobView:
        """The job's current view; NotFoundError if unknown or another tenant's."""
        view = self.cached_status(job_id, tenant=tenant)
        if view is not None:
            return view
        # Finished long ago, or another process's not read yet.
        view = self.views.read_through(lambda: self._stored(job_id))
        if view is None or (tenant is not None and view.tenant != tenant):
            raise NotFoundError(f"no job {job_id}")
        return self._positioned(view)

    def cached_status(self, job_id: str, *, tenant: str | None = None) -> JobView | None:
        """The view if this process holds it: dict lookups that never block (None: ask
        `status`, which reads the persisted views)."""
        view = self.views.get(job_id)
        if view is None or (tenant is not None and view.tenant != tenant):
            return None
        if view.status is JobStatus.QUEUED:
            position = self.queue.position(job_id)
            if position is None:
                return None  # queued by another process: its position needs a query
            view = replace(view, queue_position=position)
        return view

    def wait(self, job_id: str, timeout: float = 60.0, *, tenant: str | None = None) -> JobView:
        """Block until the job is finished (or expired); TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        view = self.status(job_id, tenant=tenant)
        while not view.status.terminal:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"job {job_id} is still {view.status} after {timeout} s")
            with self.views.changed:
                held = self.views.get(job_id)
                if held is None or not held.status.terminal:
                    self.views.changed.wait(min(remaining, self.settings.catch_up_interval_seconds))
            view = self.status(job_id, tenant=tenant)
        return view

    def cancel(self, job_id: str, *, tenant: str | None = None) -> JobView:
        return self._ask(Cancel(job_id, tenant))

    def catch_up(self) -> int:
        """Read what other processes appended to the log (otherwise done on a timer)."""
        return self._ask(CatchUp())

    def prune(self) -> list[str]:
        """Expire every finished job past its retention now; returns their ids."""
        return self._ask(Prune())

    def file_path(self, view: JobView) -> Path | None:
        """Where a completed job's file lies on this machine, when the store is a directory
        (for sendfile); None when it has no file or the store is remote (use `file_chunks`)."""
        local = getattr(self.storage, "path", None)
        if view.file_name is None or local is None:
            return None
        return local(view.file_name)

    def file_chunks(self, view: JobView, start: int = 0, length: int | None = None):
        """A completed job's file (or a range of it) from the store, chunk by chunk; raises
        FileNotFoundError when it is gone (expired by another process, say)."""
        if view.file_name is None:
            raise FileNotFoundError(view.job_id)
        return self.storage.read(view.file_name, start, length)

    def ingest(self, dataset: str, rows: Iterable[dict], *, timeout: float | None = None) -> int:
        """Ingest rows into the Silver store inside an ingestion slot of the shared budget."""
        with self.slots.ingestion(timeout=timeout):
            return self.store.ingest(dataset, rows)
