"""Run a piece of the project as another user (root drops to `nobody` where permissions must
bite), from wherever the checkout lives.

That user may not be able to enter the checkout (a clone under `mktemp -d` or root's 0700
home) nor run its venv's interpreter (pyenv under /root). So the script runs first as the
caller to learn which modules it really imports; those modules (the project and the
libraries, not the standard library) are copied into a world-readable directory, and the
script runs again as the user, on a system interpreter of the same Python version, with that
directory as PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES_FLAG = "--print-modules"

# Appended to the script for the caller's run: every module file it ended up importing.
_PRINT_MODULES = f"""
if {MODULES_FLAG!r} in sys.argv:
    import json as _json
    print(_json.dumps(sorted({{
        getattr(m, "__file__", None) or "" for m in list(sys.modules.values())
    }} - {{""}})))
"""


def imported_files(script: str, *args: str, cwd: Path, timeout: float) -> list[Path]:
    """Run `script` as the caller, with `args`; the files of every module it imported."""
    done = subprocess.run(
        [sys.executable, "-c", script + _PRINT_MODULES, *args, MODULES_FLAG],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [Path(f) for f in json.loads(done.stdout.strip().splitlines()[-1])]


def copy_importable(files: list[Path], dest: Path) -> list[str]:
    """Copy the top-level package (or module) of each file outside the standard library into
    `dest`, with every distribution's metadata; the names copied."""
    sources = [Path(p).resolve() for p in site.getsitepackages()]
    sources.append(ROOT)  # the project itself, installed in editable mode
    dest.mkdir(parents=True, exist_ok=True)
    copied: set[str] = set()
    for file in files:
        file = file.resolve()
        source = next((s for s in sources if file.is_relative_to(s)), None)
        if source is None:
            continue  # the standard library: the other interpreter has its own
        top = file.relative_to(source).parts[0]
        if top in copied:
            continue
        copied.add(top)
        for name in (top, f"{top}.libs"):  # .libs: shared objects some wheels bundle
            if (source / name).is_dir():
                shutil.copytree(source / name, dest / name, dirs_exist_ok=True)
            elif (source / name).is_file():
                shutil.copy2(source / name, dest / name)
    for source in sources[:-1]:  # importlib.metadata asks these
        for info in source.glob("*.dist-info"):
            shutil.copytree(info, dest / info.name, dirs_exist_ok=True)
    return sorted(copied)


def interpreter_for(drop: list[str], cwd: Path) -> tuple[str | None, list[str]]:
    """An interpreter of our Python version that the dropped user can run (ours first); also
    what was tried, for the skip message when there is none."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin"),
        shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin"),
    ]
    tried = []
    for python in dict.fromkeys(c for c in candidates if c):
        tried.append(python)
        done = subprocess.run(
            [*drop, python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip() == version:
            return python, tried
    return None, tried
