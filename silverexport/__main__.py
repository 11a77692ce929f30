"""The `silverexport` command line: one subcommand module per area, wired up here."""

from __future__ import annotations

import argparse
import sys

from .errors import SilverExportError


def build_parser() -> argparse.ArgumentParser:
    from .commands import events_cmds, jobs_cmds, serve_cmd, silver_cmds

    parser = argparse.ArgumentParser(
        prog="silverexport",
        description="Asynchronous, event-sourced exports of Silver datasets.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve_cmd, silver_cmds, jobs_cmds, events_cmds):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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


if __name__ == "__main__":
    sys.exit(main())
