"""The event log's port: what every backend promises, and the code they share.

The log is the append-only, hash-chained table `events` — the only truth about jobs. The
supervisor, the views, audit and the CLI hold an `EventLog` and never ask which backend it is;
`events.backends.open_event_log` picks the adapter (SQLite file or PostgreSQL) from the
settings. What must be identical on every backend — the chain, the order of checks, the
messages — lives here once, so the same events give byte-identical hashes everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson

from ..errors import ConcurrencyError, IntegrityError
from .types import EVENT_TYPES, WEBHOOK_EVENT_TYPES, Event, RecordedEvent, decode, encode_data

GENESIS_HASH = "0" * 64
APPEND_ONLY_MESSAGE = "events are append-only"
COLUMNS = ("seq", "stream_id", "version", "type", "data", "recorded_at", "hash")
Row = tuple  # (seq, stream_id, version, type, data, recorded_at, hash) as stored
# Webhook and delivery events are few beside job events: a partial index on each backend
# holds only them, so reading them (`read(types=SPARSE_TYPES)`) skips the job events.
SPARSE_TYPES = frozenset(cls.type for cls in WEBHOOK_EVENT_TYPES)
SPARSE_INDEX = "events_webhooks"


def chain_hash(
    prev: str, seq: int, stream_id: str, version: int, type_: str, data: str, recorded_at: str
) -> str:
    """SHA-256 over the previous hash and this event's stored fields, canonically encoded.

    The seq is inside, so reordering events breaks the chain as surely as editing one.
    """
    payload = orjson.dumps([prev, seq, stream_id, version, type_, data, recorded_at])
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class Append:
    """Events for one stream, with the version the writer believes the stream is at."""

    stream_id: str
    expected_version: int
    events: Sequence[Event]


class Projector(Protocol):
    """Something kept in step with the log inside the append's own transaction.

    `tx` is the adapter's handle on that transaction (a `sqlite3.Connection` on SQLite, a
    `psycopg.Connection` on PostgreSQL): a projector is written for one backend and is chosen
    together with the log by the same factory.
    """

    def project(self, tx: Any, recorded: list[RecordedEvent]) -> None: ...


@runtime_checkable
class EventLog(Protocol):
    """Append with optimistic concurrency, read back in seq order, check the chain.

    Guarantees on every backend: `seq` is gap-free and in commit order (a reader never sees a
    later seq before an earlier one is committed); UNIQUE (stream_id, version); one tenant's
    idempotency key names one job; the database itself refuses UPDATE, DELETE (and where it
    has one, TRUNCATE) on `events`; an append that returned is durable.
    """

    projector: Projector | None

    @property
    def location(self) -> str:
        """Where the log lives, for messages (never with a password)."""
        ...

    def close(self) -> None: ...

    def append(
        self, stream_id: str, expected_version: int, *events: Event
    ) -> list[RecordedEvent]: ...

    def append_batch(self, appends: Sequence[Append]) -> list[RecordedEvent]:
        """Several streams' events in one durable transaction, all or nothing."""
        ...

    def last_seq(self) -> int: ...

    def count(self) -> int: ...

    def read(
        self,
        after_seq: int = 0,
        *,
        stream_id: str | None = None,
        upto_seq: int | None = None,
        types: Collection[str] | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events after `after_seq` in seq order; `types` keeps only events of those types
        (through the partial index when they are `SPARSE_TYPES`)."""
        ...

    def read_raw(
        self,
        after_seq: int = 0,
        *,
        stream_id: str | None = None,
        upto_seq: int | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Row]:
        """Stored rows as `read` selects them, undecoded; at most `limit` of them."""
        ...

    def read_batches(self, after_seq: int = 0, *, with_hash: bool = True) -> Iterator[list[Row]]:
        """Stored rows in lists of a few thousand: the fast path for replaying a whole log."""
        ...

    def stream_ids(self) -> Iterator[str]:
        """Every stream, in the order of its first event."""
        ...

    def stream_exists(self, stream_id: str) -> bool:
        """Whether the stream has an event (one indexed lookup)."""
        ...

    def idempotent_stream(self, tenant: str, key: str) -> str | None:
        """The job one tenant's idempotency key names, if any (through the log's own index)."""
        ...

    def open_reader(self) -> Any:
        """A connection of its own for another thread: pass it to `read_from` and to the
        views' queries. The caller closes it."""
        ...

    def reader_ok(self, reader: Any) -> bool:
        """False once a reader from `open_reader` can serve nothing more (its connection to
        the database was lost): the caller closes it and opens another."""
        ...

    def read_from(
        self,
        reader: Any,
        after_seq: int = 0,
        *,
        stream_id: str | None = None,
        upto_seq: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """`read`, through a reader from `open_reader`."""
        ...

    def snapshot(self) -> AbstractContextManager[Any]:
        """Reads inside see one consistent state of a log that may be being appended."""
        ...

    def exclusive(self, *, durable: bool = True) -> AbstractContextManager[Any]:
        """A write transaction that holds the append lock (catch-up, rebuild); it yields the
        handle a projector gets. `durable=False` may skip the sync at commit (derived data)."""
        ...

    def first_bad_seq(
        self, progress: Callable[[int], None] | None = None
    ) -> tuple[int, str] | None: ...

    def missing_guards(self) -> list[str]:
        """Names of the append-only triggers that are missing or disabled."""
        ...

    def guard_problems(self) -> list[str]:
        """What the database wrongly accepted when probed (UPDATE, DELETE...), rolled back."""
        ...


# -- shared by the adapters ------------------------------------------------------------------


def types_clause(types: Collection[str]) -> str:
    """`type IN (...)` with the names as literals, sorted: the same text for the same set, so
    a query repeats the partial index's condition word for word (SQLite needs that to use
    it), and a name that is not one of the log's types is refused, never spliced into SQL."""
    unknown = set(types) - set(EVENT_TYPES)
    if unknown or not types:
        raise ValueError(f"not event types of the log: {sorted(unknown) or 'none given'}")
    return "type IN (" + ", ".join(f"'{t}'" for t in sorted(set(types))) + ")"


SPARSE_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {SPARSE_INDEX} ON events (seq) WHERE {types_clause(SPARSE_TYPES)}"
)


def chain_appends(
    appends: Sequence[Append],
    last: tuple[int, str, str] | None,
    versions: dict[str, int],
    now: str,
) -> tuple[list[Row], list[RecordedEvent]]:
    """The rows an append writes, given the log's last (seq, hash, recorded_at) and each
    stream's current version, read under the adapter's write lock.

    Raises ConcurrencyError naming the first stream not at its expected version, and
    IntegrityError for an event that is not one of the log's own types; nothing is written
    then. Times are never before the previous event's (a clock stepping back cannot reorder
    time), so the log as of a time is a prefix.
    """
    seq, prev, last_at = last if last else (0, GENESIS_HASH, "")
    recorded_at = max(now, last_at)
    rows: list[Row] = []
    recorded: list[RecordedEvent] = []
    for item in appends:
        stream_id = item.stream_id
        version = versions.get(stream_id, 0)
        if version != item.expected_version:
            raise ConcurrencyError(
                f"stream {stream_id} is at version {version}, not {item.expected_version}"
            )
        for event in item.events:
            if EVENT_TYPES.get(event.type) is not type(event):
                raise IntegrityError(f"{event!r} is not an event type of the log")
            seq += 1
            version += 1
            type_ = event.type
            data = encode_data(event).decode()
            prev = chain_hash(prev, seq, stream_id, version, type_, data, recorded_at)
            rows.append((seq, stream_id, version, type_, data, recorded_at, prev))
            recorded.append(RecordedEvent(seq, stream_id, version, event, recorded_at, prev))
        versions[stream_id] = version
    return rows, recorded


def decoded(rows: Iterable[Row]) -> Iterator[RecordedEvent]:
    for seq, sid, version, type_, data, recorded_at, hash_ in rows:
        yield RecordedEvent(seq, sid, version, decode(type_, data), recorded_at, hash_)


def first_break(
    rows: Iterable[Row], progress: Callable[[int], None] | None = None
) -> tuple[int, str] | None:
    """Walk the chain from the first stored row; (seq, why) of the first break, or None."""
    prev = GENESIS_HASH
    expected_seq = 1
    versions: dict[str, int] = {}
    for n, (seq, sid, version, type_, data, recorded_at, stored) in enumerate(rows, 1):
        if seq != expected_seq:
            return expected_seq, f"seq {expected_seq} is missing (next stored is {seq})"
        if version != versions.get(sid, 0) + 1:
            return seq, f"stream {sid} jumps to version {version}"
        versions[sid] = version
        if chain_hash(prev, seq, sid, version, type_, data, recorded_at) != stored:
            return seq, "hash does not match its content and the previous event"
        try:
            decode(type_, data)
        except Exception as e:  # a broken event is a finding of verify, not a crash
            return seq, str(e)
        prev = stored
        expected_seq += 1
        if progress and n % 10_000 == 0:
            progress(n)
    return None
