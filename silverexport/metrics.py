"""The Prometheus metrics of one system (SPEC §10): every name and label in this one module.

Each system has a registry of its own, never the client library's global one, so that tests
and several systems in one process do not collide. The names here are the contract; whoever
observes something (the HTTP middleware, the webhook deliverer) increments these objects.

events/ and actors/ know nothing of this: appends are timed by wrapping the log in the
composition root (`MeteredLog`), and what an append means (a job finished, how many rows, how
long it ran) is read from the events themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .actors.slots import Side, Slots
from .errors import StorageError
from .events.types import JobCancelled, JobCompleted, JobFailed, RecordedEvent
from .model import JobStatus, JobView
from .timeutil import parse_canonical

__all__ = ["CONTENT_TYPE_LATEST", "UNMATCHED_ROUTE", "MeteredLog", "Metrics"]  # noqa: F822

# The route label of a request no route matched (404, 405): one fixed value, never the path.
UNMATCHED_ROUTE = "unmatched"
# Methods outside this set share one label, so a client inventing methods adds no series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

EXPORT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

ViewOf = Callable[[str], JobView | None]


def __getattr__(name: str) -> Any:
    # prometheus_client is imported when metrics are first needed, not with this module: a
    # one-shot `export` never builds any, and the import was a tenth of its start-up.
    if name == "CONTENT_TYPE_LATEST":
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        return CONTENT_TYPE_LATEST
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Metrics:
    """The metric objects of one system, in their own registry."""

    def __init__(
        self,
        *,
        job_counts: Callable[[], Mapping[str, int]] | None = None,
        slots: Slots | None = None,
    ):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        registry = self.registry
        self.jobs_finished = Counter(
            "silverexport_jobs_finished",
            "Jobs this node finished, by final status",
            ["status", "dataset", "format"],
            registry=registry,
        )
        self.export_rows = Counter(
            "silverexport_export_rows",
            "Rows written by the exports this node completed",
            ["dataset", "format"],
            registry=registry,
        )
        self.export_seconds = Histogram(
            "silverexport_export_seconds",
            "Time from a completed export's start to its file being ready, on this node",
            buckets=EXPORT_BUCKETS,
            registry=registry,
        )
        self.event_append_seconds = Histogram(
            "silverexport_event_append_seconds",
            "Time of one append (one transaction) to the event log",
            buckets=APPEND_BUCKETS,
            registry=registry,
        )
        self.http_requests = Counter(
            "silverexport_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_request_seconds = Histogram(
            "silverexport_http_request_seconds",
            "Time to answer an HTTP request (a stream: until it ends), by route template",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "silverexport_webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            ["outcome"],
            registry=registry,
        )
        if job_counts is not None:
            registry.register(_JobsCollector(job_counts))
        if slots is not None:
            registry.register(_SlotsCollector(slots))
        # (route, method, status): the request counter's child and the route's duration child.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def exposition(self) -> bytes:
        """The text exposition format. Collectors read the views: call it off the event loop."""
        from prometheus_client.exposition import generate_latest

        return generate_latest(self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request; `route` is its template, never the raw path."""
        children = self._request_children.get((route, method, status))
        if children is None:
            children = self._children_of(route, method, status)
        counter, duration = children
        counter.inc()
        duration.observe(seconds)

    def _children_of(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        # labels() takes a lock and builds a tuple per call: the hot path reuses children.
        # Only known methods are remembered, so invented ones cannot grow the dict either.
        known = method in KNOWN_METHODS
        label = method if known else OTHER_METHOD
        children = (
            self.http_requests.labels(route, label, str(status)),
            self.http_request_seconds.labels(route),
        )
        if known:
            self._request_children[(route, method, status)] = children
        return children

    def observe_append(
        self, records: Iterable[RecordedEvent], seconds: float, view_of: ViewOf
    ) -> None:
        """One append by this node: its time, and the jobs it finished.

        `view_of` gives a job's view as it was before this append (its dataset, format and
        start time); a job it does not know is timed but not counted.
        """
        self.event_append_seconds.observe(seconds)
        for record in records:
            status = finished_status(record)
            if status is None:
                continue
            view = view_of(record.stream_id)
            if view is None:
                continue
            dataset, format_ = view.dataset, view.format.value
            self.jobs_finished.labels(status.value, dataset, format_).inc()
            event = record.event
            if isinstance(event, JobCompleted):
                self.export_rows.labels(dataset, format_).inc(event.rows)
                if view.started_at is not None:
                    ran = _seconds_between(view.started_at, record.recorded_at)
                    self.export_seconds.observe(max(0.0, ran))


def finished_status(record: RecordedEvent) -> JobStatus | None:
    """The final status an event gives its job, or None if the job goes on (or had ended)."""
    event = record.event
    if isinstance(event, JobCompleted):
        return JobStatus.COMPLETED
    if isinstance(event, JobCancelled):
        return JobStatus.CANCELLED
    if isinstance(event, JobFailed) and not event.will_retry:
        return JobStatus.FAILED
    return None


def _seconds_between(start: str, end: str) -> float:
    return (parse_canonical(end) - parse_canonical(start)).total_seconds()


class MeteredLog:
    """An event log (any adapter) whose appends are timed and reported to `on_append`.

    Everything else passes straight through, attribute writes included, so the composition
    root can hand this to whoever appends while events/ stays free of metrics.
    """

    __slots__ = ("_log", "_on_append")

    def __init__(self, log: Any, on_append: Callable[[list[RecordedEvent], float], None]):
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_on_append", on_append)

    @property
    def inner(self) -> Any:
        return self._log

    def append(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        return self._timed(self._log.append, *args, **kwargs)

    def append_batch(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        return self._timed(self._log.append_batch, *args, **kwargs)

    def _timed(self, append: Callable[..., list[RecordedEvent]], *args: Any, **kwargs: Any):
        start = time.perf_counter()
        records = append(*args, **kwargs)
        self._on_append(records, time.perf_counter() - start)
        return records

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._log, name, value)


def _gauge(name: str, documentation: str, labels: list[str]) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, documentation, labels=labels)


class _JobsCollector:
    """silverexport_jobs{status}: counted from the views at scrape time (one GROUP BY)."""

    def __init__(self, job_counts: Callable[[], Mapping[str, int]]):
        self.job_counts = job_counts

    def describe(self) -> list[Any]:
        return [_gauge("silverexport_jobs", _JOBS_HELP, ["status"])]

    def collect(self) -> Iterable[Any]:
        family = _gauge("silverexport_jobs", _JOBS_HELP, ["status"])
        try:
            counts = self.job_counts()
        except StorageError:
            # The views out of reach (the log's database away): the scrape still answers,
            # with every other metric and no jobs series, rather than failing whole just when
            # an operator most wants to see the node.
            yield family
            return
        for status in JobStatus:
            family.add_metric([status.value], counts.get(status.value, 0))
        yield family


_JOBS_HELP = "Jobs per status, as this node's views say"
_SLOTS_HELP = (
    "The concurrency budget per side: slots in use, free for that side now, held in reserve for it"
)


class _SlotsCollector:
    """silverexport_slots{side,state}: the budget as it is at scrape time."""

    def __init__(self, slots: Slots):
        self.slots = slots

    def describe(self) -> list[Any]:
        return [_gauge("silverexport_slots", _SLOTS_HELP, ["side", "state"])]

    def collect(self) -> Iterable[Any]:
        u = self.slots.usage()
        used = {Side.EXPORT: u.exports, Side.INGESTION: u.ingestion}
        reserve = {Side.EXPORT: u.export_reserve, Side.INGESTION: u.ingestion_reserve}
        cap = {Side.EXPORT: u.export_cap, Side.INGESTION: u.total}
        family = _gauge("silverexport_slots", _SLOTS_HELP, ["side", "state"])
        for side, other in ((Side.EXPORT, Side.INGESTION), (Side.INGESTION, Side.EXPORT)):
            held_for_other = max(0, reserve[other] - used[other])
            shared_free = u.total - used[side] - used[other] - held_for_other
            free = max(0, min(cap[side] - used[side], shared_free))
            family.add_metric([side.value, "used"], used[side])
            family.add_metric([side.value, "free"], free)
            family.add_metric([side.value, "reserved"], reserve[side])
        yield family
