"""Closing, as the interpreter exits, the systems an embedder left open.

A process that forgets `close()`, or whose exception escapes before it, must still exit, and
exit clean: its owner lock released, its connections closed, a running export interrupted
(to resume as a new attempt in the next serving process, as after `close()`).

When is the question. Python's exit first runs threading's exit hooks (concurrent.futures
stops its executors in one: from then on they refuse work), then joins the non-daemon threads,
and only then runs `atexit` handlers. By `atexit` time the executors a system relies on (the
webhook database thread, an export's snapshot readers) refuse work, so `close()` there would
fail, and a running export would fail its job rather than be interrupted. So the systems are
closed in a threading exit hook, registered after concurrent.futures' own so that it runs
first (they run last registered first): exactly where Python's own executors stop. Like
those, a system is thereby closed when the main thread ends, even if other non-daemon threads
of the embedder still use it.

The hook is private to the threading module (concurrent.futures is its user); where it is
missing, `atexit` is the fallback. The actors run on daemon threads besides, so that a close
that cannot finish never keeps the process alive: what it leaves half done is what crash
recovery already handles.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (its exit hook must be registered before ours)
import logging
import os
import threading
import weakref
from typing import Protocol

log = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self) -> None: ...


_open: weakref.WeakSet[Closable] = weakref.WeakSet()
_lock = threading.Lock()
_hooked = False


def close_at_exit(system: Closable) -> None:
    """Have `system` closed as the interpreter exits, unless it is closed (`forget`) first."""
    global _hooked
    with _lock:
        _open.add(system)
        if not _hooked:
            register = getattr(threading, "_register_atexit", atexit.register)
            try:
                register(_close_all)
            except RuntimeError:  # opened while the interpreter already shuts down
                return
            os.register_at_fork(after_in_child=_forget_all_in_child)
            _hooked = True


def forget(system: Closable) -> None:
    """`system` was closed: nothing to do for it at exit."""
    with _lock:
        _open.discard(system)


def _close_all() -> None:
    """Never raises: an exception here would skip the executors' own hook after it."""
    with _lock:
        systems = list(_open)
        _open.clear()
    for system in systems:
        try:
            system.close()
        except Exception as e:
            log.warning("could not close the export system at exit: %s", str(e) or type(e).__name__)


def _forget_all_in_child() -> None:
    """A forked child has none of its parent's threads: closing its systems would wait on
    actors that are not there, and its parent closes them."""
    global _lock
    _lock = threading.Lock()
    _open.clear()
