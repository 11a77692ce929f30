"""SQLite's allocation counting is turned off for the `silverexport` program, and only when
that is safe: each case runs in a fresh interpreter, whose SQLite nothing else has touched."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the setting is made on Linux only"
)

# Prints, at exit, how much memory SQLite counts as in use while a connection is open: 0 once
# the counting is off.
PROBE = """
import atexit, ctypes, sqlite3, _sqlite3
lib = ctypes.CDLL(_sqlite3.__file__)
lib.sqlite3_memory_used.restype = ctypes.c_int64
def counted():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    used = lib.sqlite3_memory_used()
    conn.close()
    return used
atexit.register(lambda: print("counted", counted()))
"""


def python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_counting_is_on_by_default():
    out = python("pass")
    assert out[0] == "counted" and int(out[1]) > 0


def test_it_turns_counting_off_when_nothing_is_open():
    out = python("""
        from silverexport.sqlite_tuning import stop_counting_memory
        print(stop_counting_memory())
    """)
    assert out == ["True", "counted", "0"]


def test_it_leaves_sqlite_alone_while_a_connection_is_open():
    out = python("""
        from silverexport.sqlite_tuning import stop_counting_memory
        held = sqlite3.connect(":memory:")
        held.execute("CREATE TABLE kept (x)")
        print(stop_counting_memory())
        held.execute("INSERT INTO kept VALUES (1)")  # still usable: SQLite was not shut down
        print(held.execute("SELECT count(*) FROM kept").fetchone()[0])
        held.close()
    """)
    assert out[:2] == ["False", "1"]
    assert out[2] == "counted" and int(out[3]) > 0


def test_a_second_call_is_harmless():
    out = python("""
        from silverexport.sqlite_tuning import stop_counting_memory
        print(stop_counting_memory(), stop_counting_memory())
    """)
    assert out == ["True", "True", "counted", "0"]


def test_the_silverexport_program_turns_it_off_first():
    out = python("""
        import sys
        from silverexport.__main__ import run
        sys.argv = ["silverexport", "--help"]
        try:
            run()
        except SystemExit:
            pass
    """)
    assert out[-2:] == ["counted", "0"]


def test_main_called_in_process_leaves_it_alone():
    """An embedder's `main([...])` must not shut down the SQLite its process is using."""
    out = python("""
        from silverexport.__main__ import main
        try:
            main(["--help"])
        except SystemExit:
            pass
    """)
    assert out[-2] == "counted" and int(out[-1]) > 0
