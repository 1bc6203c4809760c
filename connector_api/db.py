"""Connections to the source database, and the read that every format is built from.

A read is one SQL statement through ADBC's PostgreSQL driver, which has PostgreSQL send binary
COPY and decodes it into Arrow record batches in C++: the library doing what the previous
release hand-decoded with numpy (rows made fixed-width by a NULL flag per value). Measured side
by side (one PostgreSQL, requests alternated, 2 shared cores), the numpy decode served a year x
3 variables as Arrow in 281-465 ms against 350-596 ms here, and a day within 0.1-0.8 ms: far
from the 2x a hand-written decoder must buy to stay (docs/rules.md), so it went. (A parse of COPY's
CSV by pyarrow, tried first, was slower than both.) The API's sessions are ADBC's, pooled by
SQLAlchemy's pool; psycopg2 stays for the generator and the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import psycopg2
import pyarrow as pa
from adbc_driver_postgresql import StatementOptions
from sqlalchemy.exc import TimeoutError as PoolTimeout

from connector_api.schema import (
    CATALOGUE_QUERY,
    TABLE,
    TIME_COLUMN,
    TURBINE_COLUMN,
    TURBINE_TABLE,
    TURBINES_QUERY,
)

if TYPE_CHECKING:
    from sqlalchemy.pool import Pool

CONNECT_TIMEOUT_SECONDS = 5
# A pooled request that finds every connection busy waits this long, then is answered 503.
POOL_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "connector-api"  # in pg_stat_activity: requests, streams and /health
STREAM_APPLICATION_NAME = "connector-api stream"
HEALTH_APPLICATION_NAME = "connector-api health"
# The reader hands over record batches of about this size (ADBC's hint), cut to chunk_rows.
BATCH_BYTES = 4 << 20

# What a failing or saturated database raises: ADBC (the API's reads), the pool's checkout
# timeout when every connection is busy, psycopg2 (the generator and the CLI's checks).
ERRORS = (adbc_driver_manager.Error, PoolTimeout, psycopg2.Error)


def first_line(error: BaseException) -> str:
    """The first line of a database error (drivers append context lines), for a message."""
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


def connect(url: str, **options: object) -> psycopg2.extensions.connection:
    """One psycopg2 connection (the generator and the CLI's reachability check)."""
    return psycopg2.connect(libpq_url(url), connect_timeout=CONNECT_TIMEOUT_SECONDS, **options)


# Sessions are in autocommit, so none should ever sit inside a transaction; one that does (a
# bug) is ended by PostgreSQL after this long, releasing its snapshot and its connection.
IDLE_IN_TRANSACTION_SECONDS = 60

_SESSION_SETTINGS = {
    # every statement read-only: the API never writes, whatever a bug would try
    "default_transaction_read_only": "on",
    # how the quoting of _literal is read
    "standard_conforming_strings": "on",
    # every read of `data` is in primary-key order, which the index gives; without fresh
    # statistics (a table just seeded) PostgreSQL misjudged a range's rows and chose to sort
    # it instead, before sending a first row
    "enable_sort": "off",
    "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_SECONDS * 1000),
    "TimeZone": "UTC",
}


def reader_uri(url: str, application_name: str) -> str:
    """The libpq URI of an API session: read-only, in autocommit, named in pg_stat_activity."""
    from urllib.parse import quote, urlencode

    from sqlalchemy.engine import make_url

    options = " ".join(f"-c {key}={value}" for key, value in _SESSION_SETTINGS.items())
    parsed = make_url(url).set(drivername="postgresql")
    query = {
        **parsed.query,
        "options": options,
        "application_name": application_name,
        "connect_timeout": str(CONNECT_TIMEOUT_SECONDS),
    }
    base = parsed.set(query={}).render_as_string(hide_password=False)
    return f"{base}?{urlencode(query, doseq=True, quote_via=quote)}"


def connect_reader(url: str, *, application_name: str):
    """A read-only ADBC connection in autocommit: every read is one statement, so one snapshot
    by PostgreSQL's own rule, and no transaction is ever left open."""
    return adbc.connect(reader_uri(url, application_name), autocommit=True)


def create_pool(
    url: str, *, application_name: str = APPLICATION_NAME, size: int = 5, overflow: int = 10
) -> Pool:
    """A pool of reader connections that notices a restarted database (SQLAlchemy's pool, over
    ADBC connections): one for the API's short reads, one for its streams. A new ADBC connection
    costs about 50 ms (it reads PostgreSQL's type catalogue), a fifth of a 2-day fleet block."""
    from sqlalchemy import event
    from sqlalchemy.pool import QueuePool

    pool = QueuePool(
        lambda: connect_reader(url, application_name=application_name),
        pool_size=size,
        max_overflow=overflow,
        timeout=POOL_TIMEOUT_SECONDS,
        reset_on_return=None,  # autocommit: nothing to roll back
    )
    event.listen(pool, "checkout", _ping_if_idle)
    event.listen(pool, "checkin", _note_checkin)
    return pool


# A ping on every checkout costs a round trip, a fifth of a small request; a connection used
# in the last second is known good, so only one idle for longer is pinged.
IDLE_PING_SECONDS = 1.0


def _note_checkin(dbapi_connection, connection_record) -> None:
    connection_record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    from sqlalchemy.exc import DisconnectionError

    idle = time.monotonic() - connection_record.info.get("checked_in", 0.0)
    if idle < IDLE_PING_SECONDS:
        return
    try:
        fetch(dbapi_connection, "SELECT 1")
    except adbc_driver_manager.Error as error:
        raise DisconnectionError(first_line(error)) from error  # the pool reconnects


@contextmanager
def raw_connection(pool: Pool) -> Iterator:
    """A pooled reader connection, returned to the pool after use.

    One that failed is discarded rather than handed out again (a query error on a healthy
    connection costs one reconnect, rarely; a broken one is never reused).
    """
    conn = pool.connect()
    try:
        yield conn.dbapi_connection
    except Exception:
        conn.invalidate()
        raise
    finally:
        conn.close()


def literal(text: str) -> str:
    """A SQL string literal (quotes doubled; standard_conforming_strings is on in our sessions).

    Only for values already checked against the catalogue; timestamps are written from parsed
    datetimes. ADBC binds parameters only outside COPY, which is what makes its reads fast.
    """
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    """A quoted SQL identifier, for names read from the catalogue."""
    return '"' + name.replace('"', '""') + '"'


def _timestamp(moment: datetime) -> str:
    return f"'{moment.isoformat()}'::timestamptz"


def fetch(conn, query: str) -> list[tuple]:
    """All rows of a small query on a reader connection."""
    cur = conn.cursor()
    try:
        cur.execute(query)
        return cur.fetchall()
    finally:
        cur.close()


def read_variables(conn) -> list[str]:
    """The numeric columns of the source table, in table order; empty if it doesn't exist."""
    return [name for (name,) in fetch(conn, CATALOGUE_QUERY.replace("%s", literal(TABLE)))]


def read_turbines(conn) -> list[tuple]:
    """The rows of the turbine table ordered by id; empty if it doesn't exist."""
    if not fetch(conn, f"SELECT to_regclass({literal(TURBINE_TABLE)}) IS NOT NULL")[0][0]:
        return []
    return fetch(conn, TURBINES_QUERY)


def data_query(
    variables: Sequence[str],
    turbines: Sequence[str] | None,
    start: datetime,
    end: datetime,
    limit: int | None = None,
) -> str:
    """The read of ``[start, end)``; identifiers and ids come only from the catalogue.

    Ordered by the primary key (turbine_id, timestamp), which the index gives: PostgreSQL sends
    the first rows at once and never sorts the range. Columns are named by position, so any
    column name (a comma, a quote) reaches the formats untouched.
    """
    time_ = _identifier(TIME_COLUMN)
    selected = [f"{_identifier(TURBINE_COLUMN)} AS c0", f"{time_} AS c1"] + [
        f"{_identifier(name)}::float8 AS c{i}" for i, name in enumerate(variables, start=2)
    ]
    conditions = [f"{time_} >= {_timestamp(start)}", f"{time_} < {_timestamp(end)}"]
    if turbines is not None:
        ids = ", ".join(literal(turbine) for turbine in turbines)
        conditions.append(f"{_identifier(TURBINE_COLUMN)} IN ({ids})")
    return (
        f"SELECT {', '.join(selected)} FROM {_identifier(TABLE)}"
        f" WHERE {' AND '.join(conditions)}"
        f" ORDER BY {_identifier(TURBINE_COLUMN)}, {time_}"
        + (f" LIMIT {int(limit)}" if limit else "")
    )


TURBINE_TYPE = pa.dictionary(pa.int32(), pa.string())


def _tidy(table: pa.Table, variables: Sequence[str]) -> pa.Table:
    """Our names, ``turbine_id`` dictionary-encoded, one batch; the driver's metadata dropped."""
    names = [TURBINE_COLUMN, TIME_COLUMN, *variables]
    schema = pa.schema(
        [
            pa.field(TURBINE_COLUMN, TURBINE_TYPE),
            pa.field(TIME_COLUMN, pa.timestamp("us", tz="UTC")),
            *(pa.field(name, pa.float64()) for name in variables),
        ]
    )
    columns = [table.column(0).dictionary_encode(), *table.columns[1:]]
    table = pa.Table.from_arrays(columns, names=names).cast(schema)
    return table if table.column(0).num_chunks <= 1 else table.combine_chunks()


def read_table(
    conn,
    variables: Sequence[str],
    turbines: Sequence[str] | None,
    start: datetime,
    end: datetime,
    *,
    limit: int | None = None,
) -> pa.Table:
    """Rows of ``[start, end)`` (the first ``limit``) in key order, in one table:
    ``turbine_id`` (dictionary-encoded), ``timestamp`` (UTC), then one float64 per variable,
    NULL where the reading is missing."""
    cur = conn.cursor()
    try:
        cur.execute(data_query(variables, turbines, start, end, limit))
        return _tidy(cur.fetch_arrow_table(), variables)
    finally:
        cur.close()


class RangeReader:
    """All rows of ``[start, end)`` in key order, as tables of at most ``chunk_rows`` rows.

    One statement for the whole range, so one snapshot; ADBC reads PostgreSQL's binary COPY
    into record batches as they are asked for, so a client that reads slowly holds PostgreSQL
    back through TCP and memory stays at a batch or two whatever the range and the fleet.
    :meth:`close` ends the statement wherever it is; the caller owns ``conn``.
    """

    def __init__(
        self,
        conn,
        variables: Sequence[str],
        turbines: Sequence[str] | None,
        start: datetime,
        end: datetime,
        chunk_rows: int,
    ) -> None:
        self._variables, self._chunk_rows = variables, chunk_rows
        self.finished = False  # read to the end: its connection can serve another stream
        self._cursor = conn.cursor()
        self._cursor.adbc_statement.set_options(
            **{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(BATCH_BYTES)}
        )
        try:
            self._cursor.execute(data_query(variables, turbines, start, end))
            self._batches = self._cursor.fetch_record_batch()
        except BaseException:
            self._cursor.close()  # ADBC refuses to close a connection with a statement open
            raise

    def __iter__(self) -> Iterator[pa.Table]:
        for batch in self._batches:
            for offset in range(0, batch.num_rows, self._chunk_rows):
                part = batch.slice(offset, self._chunk_rows)
                yield _tidy(pa.Table.from_batches([part]), self._variables)
        self.finished = True

    def close(self) -> None:
        """Stop the statement if it still runs (the server cancels it) and free the cursor."""
        # Whatever state the statement is in, closing must go on: errors here are moot.
        with suppress(Exception):
            self._cursor.adbc_cancel()
        with suppress(Exception):
            self._batches.close()
        with suppress(Exception):
            self._cursor.close()
