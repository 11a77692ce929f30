"""Nodes: how the processes sharing one event log know each other (SPEC §8 "Several nodes").

Two ports, each chosen here alone, next to the log they go with:
- liveness (`port.Liveness`): who this process is in the log, and whether another still
  lives — a lock file per process beside a SQLite log (flock.py), a lease in the database
  beside a PostgreSQL one (postgres_lease.py);
- wake-ups: something tells the system that the log grew, so that it catches up at once
  rather than at its next Tick — LISTEN/NOTIFY on PostgreSQL (postgres_listen.py), nothing on
  SQLite, where the Tick's polling is all (processes there share one machine anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..config import Settings
from .port import Liveness, NodeIdInUse, default_node_id

__all__ = ["Liveness", "NodeIdInUse", "Wakeup", "default_node_id", "open_liveness", "open_wakeup"]


class Wakeup(Protocol):
    def close(self) -> None: ...


class PollingOnly:
    """Where the log sends no notifications (SQLite): the Tick's polling is all there is."""

    def close(self) -> None:
        pass


def open_liveness(settings: Settings, *, serving: bool) -> Liveness:
    """This process's identity: `SILVEREXPORT_NODE_ID` for a serving node; a one-shot command
    (the CLI's export, listing, pruning) takes a default id of its own, so that it can run
    beside the node whose settings it shares."""
    node_id = (settings.node_id if serving else "") or default_node_id()
    if settings.event_log_url:
        from .postgres_lease import PostgresLease  # psycopg only loads when it is used

        return PostgresLease(settings.event_log_url, node_id, lease_seconds=settings.lease_seconds)
    from .flock import FlockLiveness

    return FlockLiveness(settings.owners_dir, node_id)


def open_wakeup(settings: Settings, on_change: Callable[[], None]) -> Wakeup:
    """Calls `on_change` (from a thread of its own) when the log may have grown."""
    if settings.event_log_url:
        from .postgres_listen import LogListener

        return LogListener(settings.event_log_url, on_change)
    return PollingOnly()
