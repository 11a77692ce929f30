"""Subcommands of the `silverexport` command line; each module has `register(subparsers)`."""
