"""Process-wide SQLite settings that Python's sqlite3 module does not expose.

SQLite counts every allocation under one global mutex by default (SQLITE_CONFIG_MEMSTATUS).
An export renders on two threads, and SQLite allocates for every printf() line it builds, so
the two threads spent much of their time waiting on that mutex: with the counting off, a
1M-row JSONL export took 4.1 s instead of 5-6.8 s, in half the CPU time (bench/cli_export.py).
Nothing here reads the counts.

The setting can only change while SQLite is shut down, so it is for a process that owns its
SQLite: the `silverexport` command calls it first thing. An embedder may call it before it
opens any SQLite connection, from one thread.
"""

from __future__ import annotations

import ctypes
import sys

SQLITE_OK = 0
SQLITE_CONFIG_MEMSTATUS = 9


def stop_counting_memory() -> bool:
    """Turn SQLite's allocation counting off; True if it is off now.

    Does nothing (False) where it cannot be done safely: SQLite memory in use means a
    connection or statement is open, which shutting SQLite down would pull from under it; a
    platform whose variadic calls ctypes cannot make (only Linux and Windows are tried); a
    build whose symbols are hidden. Never raises: it is only about speed.
    """
    if not (sys.platform.startswith("linux") or sys.platform == "win32"):
        return False
    try:
        import _sqlite3

        lib = ctypes.CDLL(_sqlite3.__file__)  # its symbols and those of the SQLite it uses
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        lib.sqlite3_malloc.restype = ctypes.c_void_p
        lib.sqlite3_free.argtypes = [ctypes.c_void_p]
        if lib.sqlite3_memory_used() != 0:
            return False  # in use: not ours to shut down
        probe = lib.sqlite3_malloc(64)
        counted = lib.sqlite3_memory_used() > 0
        lib.sqlite3_free(probe)
        if not counted:
            return True  # already off (and then in-use memory cannot be seen: leave it)
        if lib.sqlite3_shutdown() != SQLITE_OK:
            return False
        off = lib.sqlite3_config(SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == SQLITE_OK
        return lib.sqlite3_initialize() == SQLITE_OK and off
    except (OSError, AttributeError, ImportError):
        return False
