"""bench/ scripts run with bench/ first on sys.path, so none may share a standard module's name.

A `bench/http.py` once made `import http.client` (aiohttp, botocore, urllib) find the script
instead of the standard library, and every script beside it needed a sys.path hack.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_no_bench_module_shadows_the_standard_library():
    shadowing = sorted(p.name for p in BENCH.glob("*.py") if p.stem in sys.stdlib_module_names)
    assert shadowing == []


def test_the_standard_http_package_imports_with_bench_first_on_the_path():
    code = "import http.client, sys; print(http.client.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(BENCH)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not out.strip().startswith(str(BENCH))


def test_no_bench_script_edits_sys_path_to_dodge_a_sibling():
    hacks = [p.name for p in BENCH.glob("*.py") if "sys.path[:]" in p.read_text()]
    assert hacks == []
