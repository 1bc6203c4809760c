"""Connections to the source database, and the columnar read that every format is built from.

Reads use ``COPY (SELECT …) TO STDOUT (FORMAT binary)``: with every field fixed-width (NULLs are
sent as a 0 plus a separate is-null flag) each row has the same length, so numpy reads a chunk
as one structured array instead of building a Python object per value.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import psycopg2
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from connector_api.schema import CATALOGUE_QUERY, TABLE, TIME_COLUMN

if TYPE_CHECKING:
    from sqlalchemy import Engine

CONNECT_TIMEOUT_SECONDS = 5
# PostgreSQL counts timestamps in microseconds from 2000-01-01; numpy from 1970-01-01.
_PG_EPOCH_US = 946_684_800_000_000
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BINARY_HEADER = 19  # signature (11) + flags (4) + header extension length (4)
_BINARY_TRAILER = 2  # the int16 -1 that ends the stream


# What a failing or saturated database raises: through the SQLAlchemy pool (including its
# checkout timeout when every connection is busy), or from a raw psycopg2 cursor.
ERRORS = (DBAPIError, PoolTimeout, psycopg2.Error)


def first_line(error: BaseException) -> str:
    """The first line of a database error (psycopg2 appends context lines), for a message."""
    error = getattr(error, "orig", None) or error
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def libpq_url(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (no driver name), for psycopg2.connect."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def connect(url: str) -> psycopg2.extensions.connection:
    """One psycopg2 connection (the generator and the CLI's reachability check)."""
    return psycopg2.connect(libpq_url(url), connect_timeout=CONNECT_TIMEOUT_SECONDS)


def create_engine(url: str) -> Engine:
    """A pooled, read-only engine for the API that notices a restarted database."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    sqlalchemy.event.listen(engine, "connect", _read_only_snapshots)
    sqlalchemy.event.listen(engine, "checkout", _ping_if_idle)
    sqlalchemy.event.listen(engine, "checkin", _note_checkin)
    return engine


def _read_only_snapshots(dbapi_connection, connection_record) -> None:
    """Each transaction one read-only snapshot, so a range read in chunks is consistent.

    Set once per connection: psycopg2 then says it in its BEGIN, at no extra round trip.
    """
    dbapi_connection.set_session(isolation_level="REPEATABLE READ", readonly=True)


# SQLAlchemy's pool_pre_ping costs a round trip on every request, a fifth of a small one; a
# connection used in the last second is known good, so only one idle for longer is pinged.
IDLE_PING_SECONDS = 1.0


def _note_checkin(dbapi_connection, connection_record) -> None:
    connection_record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    from sqlalchemy.exc import DisconnectionError

    idle = time.monotonic() - connection_record.info.get("checked_in", 0.0)
    if idle < IDLE_PING_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cur:
            cur.execute("SELECT 1")
    except psycopg2.Error as error:
        raise DisconnectionError(first_line(error)) from error  # the pool reconnects


@contextmanager
def raw_connection(engine: Engine) -> Iterator[psycopg2.extensions.connection]:
    """A pooled psycopg2 connection, rolled back and returned to the pool after use.

    One that failed at the connection level is discarded rather than handed out again.
    """
    conn = engine.raw_connection()
    try:
        yield conn.dbapi_connection
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        conn.invalidate()
        raise
    finally:
        conn.close()


def read_variables(conn: psycopg2.extensions.connection) -> list[str]:
    """The numeric columns of the source table, in table order; empty if it doesn't exist."""
    with conn.cursor() as cur:
        cur.execute(CATALOGUE_QUERY, (TABLE,))
        return [name for (name,) in cur.fetchall()]


@dataclass(frozen=True)
class Columns:
    """One chunk of rows, columnar: UTC microseconds, then a value and a null mask per variable."""

    timestamps_us: np.ndarray  # int64, microseconds since 1970-01-01 UTC
    values: dict[str, np.ndarray]  # float64, 0.0 where null
    nulls: dict[str, np.ndarray]  # bool

    def __len__(self) -> int:
        return len(self.timestamps_us)


def _row_dtype(variables: Sequence[str]) -> np.dtype:
    fields = [("n", ">i2"), ("ts_len", ">i4"), ("ts", ">i8")]
    for i in range(len(variables)):
        fields += [(f"v{i}_len", ">i4"), (f"v{i}", ">f8"), (f"n{i}_len", ">i4"), (f"n{i}", "u1")]
    return np.dtype(fields)


def _copy_query(
    conn, variables: Sequence[str], start: datetime, end: datetime, limit: int | None
) -> str:
    """The COPY statement; identifiers come only from the catalogue, values are bound literals."""
    from psycopg2 import sql

    selected = [sql.Identifier(TIME_COLUMN)]
    for name in variables:
        column = sql.Identifier(name)
        selected += [
            sql.SQL("coalesce({}, 0)::float8").format(column),
            sql.SQL("({} IS NULL)").format(column),
        ]
    query = sql.SQL(
        "COPY (SELECT {fields} FROM {table} WHERE {time} >= {start} AND {time} < {end}"
        " ORDER BY {time} LIMIT {limit}) TO STDOUT (FORMAT binary)"
    ).format(
        fields=sql.SQL(", ").join(selected),
        table=sql.Identifier(TABLE),
        time=sql.Identifier(TIME_COLUMN),
        start=sql.Literal(start),
        end=sql.Literal(end),
        limit=sql.Literal(limit) if limit else sql.SQL("ALL"),
    )
    return query.as_string(conn)


def read_columns(
    conn: psycopg2.extensions.connection,
    variables: Sequence[str],
    start: datetime,
    end: datetime,
    limit: int | None = None,
) -> Columns:
    """Rows with ``start <= timestamp < end`` in time order (the first ``limit``), as columns."""
    buffer = io.BytesIO()
    with conn.cursor() as cur:
        cur.copy_expert(_copy_query(conn, variables, start, end, limit), buffer)
    body = buffer.getbuffer()[_BINARY_HEADER:-_BINARY_TRAILER]
    rows = np.frombuffer(body, dtype=_row_dtype(variables))
    return Columns(
        timestamps_us=rows["ts"].astype(np.int64) + _PG_EPOCH_US,
        values={name: rows[f"v{i}"].astype(np.float64) for i, name in enumerate(variables)},
        nulls={name: rows[f"n{i}"].astype(bool) for i, name in enumerate(variables)},
    )


def read_chunks(
    engine: Engine,
    variables: Sequence[str],
    start: datetime,
    end: datetime,
    chunk_rows: int,
) -> Iterator[Columns]:
    """All rows of ``[start, end)`` in chunks of at most ``chunk_rows``, from one snapshot.

    Keyset pagination on the primary key: memory is bounded by the chunk whatever the range,
    each chunk is an index range scan, and an empty stretch of time costs nothing.
    """
    with raw_connection(engine) as conn:
        while True:
            chunk = read_columns(conn, variables, start, end, chunk_rows)
            yield chunk
            if len(chunk) < chunk_rows:
                return
            start = _UNIX_EPOCH + timedelta(microseconds=int(chunk.timestamps_us[-1]) + 1)
