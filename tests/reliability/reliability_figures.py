"""The figures each reliability suite measured: printed when the test ends (visible with
`pytest -q`), repeated in the terminal summary, and written as JSON into the test's tmp dir
(never into the repository)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

_COLLECTED: dict[str, dict[str, Any]] = {}


class _Summary:
    """A plugin registered on first use: it prints every suite's figures at the very end."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not _COLLECTED:
            return
        terminalreporter.section("reliability figures")
        for name, figures in _COLLECTED.items():
            terminalreporter.write_line(line(name, figures))


def line(name: str, figures: dict[str, Any]) -> str:
    return f"{name}: " + ", ".join(f"{k} {v}" for k, v in figures.items())


def record(request: pytest.FixtureRequest, name: str, figures: dict[str, Any], tmp: Path) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("silverexport-reliability-figures"):
        manager.register(_Summary(), "silverexport-reliability-figures")
    _COLLECTED[name] = figures
    (tmp / f"{name.replace(' ', '_')}.json").write_bytes(orjson.dumps(figures))
    if hasattr(request.node, "user_properties"):  # a test, not a module fixture's teardown
        request.node.user_properties.append(("figures", figures))
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print("\n" + line(name, figures), flush=True)
    else:
        print("\n" + line(name, figures), flush=True)
