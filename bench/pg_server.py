"""Fresh PostgreSQL databases for the benchmarks: on a server given by URL, or on a throwaway
PostgreSQL 15 started on 127.0.0.1 (fsync on, as the tests start it) and stopped after."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import benchkit  # noqa: F401 (puts the repository, and so tests/, on sys.path)
import psycopg


class Databases:
    """Fresh databases on one server: ours when --url is given, else a throwaway one."""

    def __init__(self, url: str | None):
        self.server = None
        if url is None:
            from tests.postgres_server import PostgresServer, available

            if not available():
                raise SystemExit("PostgreSQL 15 is not available: apt-get install postgresql-15")
            self.server = PostgresServer().start()
            url = self.server.url("postgres")
        self.admin_url = url
        self.made: list[str] = []

    def fresh(self) -> str:
        name = f"bench_{os.getpid()}_{len(self.made)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        self.made.append(name)
        return urlsplit(self.admin_url)._replace(path=f"/{name}").geturl()

    def describe(self) -> str:
        """The server's version and durability settings, for the report."""
        with psycopg.connect(self.admin_url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
            sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        return f"PostgreSQL {version}, fsync={fsync}, synchronous_commit={sync}"

    def close(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.server is not None:
            self.server.stop()
