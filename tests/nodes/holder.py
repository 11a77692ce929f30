"""`python -m tests.nodes.holder flock|postgres WHERE NODE_ID LEASE`: take a node identity in a
process of its own, say so on stdout, and hold it until killed — a node as the others see it."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from silverexport.nodes.flock import FlockLiveness


def hold(kind: str, where: str, node_id: str, lease: float):
    if kind == "flock":
        return FlockLiveness(Path(where), node_id)
    from silverexport.nodes.postgres_lease import PostgresLease

    return PostgresLease(where, node_id, lease_seconds=lease)


if __name__ == "__main__":
    kind, where, node_id, lease = sys.argv[1:5]
    held = hold(kind, where, node_id, float(lease))
    print("held", flush=True)
    threading.Event().wait()  # until SIGKILL
