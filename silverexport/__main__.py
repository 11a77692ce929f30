"""The `silverexport` command line: one subcommand module per area, wired up here."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from .errors import SilverExportError
from .sqlite_tuning import stop_counting_memory

# Which module registers each command. A command line naming one of them imports only that
# module: `export` then starts without aiohttp, and `serve` without the audit tools.
COMMANDS = {
    "serve": "serve_cmd",
    "demo-data": "silver_cmds",
    "ingest": "silver_cmds",
    "export": "jobs_cmds",
    "jobs": "jobs_cmds",
    "prune": "jobs_cmds",
    "audit": "events_cmds",
    "verify": "events_cmds",
    "rebuild": "events_cmds",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of the module that registers `command`."""
    parser = argparse.ArgumentParser(
        prog="silverexport",
        description="Asynchronous, event-sourced exports of Silver datasets.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in wanted:
        import_module(f".commands.{name}", __package__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SilverExportError as e:
        print(f"silverexport: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `silverexport audit | head`: the reader left; say nothing more, like other tools.
        sys.stdout = None  # nothing left to flush at exit
        return 0


def run() -> int:
    """The `silverexport` program: a process of its own, so SQLite is set up for it first."""
    stop_counting_memory()
    return main()


if __name__ == "__main__":
    sys.exit(run())
