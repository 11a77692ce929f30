"""The deployment tests' fixture: `backends` (tests/deploy/backends.py)."""

from tests.deploy.backends import backends  # noqa: F401
