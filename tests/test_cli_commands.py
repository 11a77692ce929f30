"""The command table of __main__: each command imports only the module that registers it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import import_module

import pytest

from silverexport.__main__ import COMMANDS, build_parser, main


def registered_by(module_name: str) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    import_module(f"silverexport.commands.{module_name}").register(sub)
    return set(sub.choices)


def test_the_table_names_every_command_each_module_registers_and_no_other():
    for module_name in set(COMMANDS.values()):
        expected = {c for c, m in COMMANDS.items() if m == module_name}
        assert registered_by(module_name) == expected, module_name
    full = build_parser()
    (sub,) = [a for a in full._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == set(COMMANDS)


def test_a_command_line_builds_only_its_own_module_and_export_needs_no_http():
    code = (
        "import sys\n"
        "from silverexport.__main__ import build_parser\n"
        "parser = build_parser('export')\n"
        "parser.parse_args(['export', 'token_transfers', '--format', 'csv'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('aiohttp', 'silverexport.http', "
        "'silverexport.commands.'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['silverexport.commands.common', 'silverexport.commands.jobs_cmds']"


def test_an_unknown_command_or_help_still_gets_the_whole_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert all(repr(command) in error for command in COMMANDS), error  # "choose from ..."
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS), out
