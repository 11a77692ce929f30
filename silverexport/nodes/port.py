"""The liveness port: who this process is in the log, and whether another one still lives.

A job's `owner` (JobStarted) and `accepted_by` (JobRequested) name a node; a serving node that
finds a job whose owner is dead recovers it (recovery.recover_orphans). The answer must come
from something every node can see: a lock file where every process shares one disk (SQLite),
a lease in the database where nodes share only the database (PostgreSQL).
`nodes.open_liveness` picks the adapter; nothing above the port knows which it has.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
from typing import Protocol, runtime_checkable

from ..errors import SilverExportError

_opened = itertools.count(1)


class NodeIdInUse(SilverExportError):
    """Another live node already holds this node id: the second one must not start."""

    code = "node_id_in_use"


def default_node_id() -> str:
    """Host name and process id (SPEC §8): unique among live processes, readable in logs. A
    process that opens more than one system (an embedder, a test) gets `.2`, `.3`... after
    the first, so that each still has an identity of its own."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-.") or "host"
    n = next(_opened)
    return f"{host[:100]}-{os.getpid()}" + (f".{n}" if n > 1 else "")


@runtime_checkable
class Liveness(Protocol):
    """This process's identity, held while it lives, and a view of everyone else's."""

    @property
    def owner_id(self) -> str:
        """The node id this process writes into the log as a job's owner."""
        ...

    def is_alive(self, owner_id: str | None) -> bool:
        """Whether the node that wrote `owner_id` still holds it. When the answer cannot be
        had (the database is unreachable), True: a job is never taken from a node that may
        be running it on a guess."""
        ...

    def release(self) -> None:
        """Give the identity up (a clean stop): others see this node dead at once."""
        ...
