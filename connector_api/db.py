"""Connections to the source database, and the read that every format is built from.

A read is one ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` parsed by pyarrow's CSV reader into
Arrow tables: PostgreSQL's own text output and the library's parser, no hand-decoded buffers.
The previous release decoded binary COPY with numpy (rows made fixed-width by a NULL flag per
value), a speed trick that must buy 2x on a figure of SPEC §9 to stay. Measured in one process
on one database, alternating, on the shared 2-core machine: a day x 2 variables read in 0.9 ms
that way against 3.1 ms this way, about 2 ms of a 5-7 ms request, so at most 1.4x on the day
figures; a year is bound by PostgreSQL's COPY either way. So it went.
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg2
import pyarrow as pa
import pyarrow.csv
from psycopg2 import sql
from sqlalchemy.exc import DBAPIError
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
    from sqlalchemy import Engine

CONNECT_TIMEOUT_SECONDS = 5
# A pooled request that finds every connection busy waits this long, then is answered 503.
POOL_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "connector-api"  # in pg_stat_activity: requests, streams and /health
STREAM_APPLICATION_NAME = "connector-api stream"
HEALTH_APPLICATION_NAME = "connector-api health"

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


def connect(url: str, **options: object) -> psycopg2.extensions.connection:
    """One psycopg2 connection (the generator, the CLI's reachability check, /health, streams)."""
    return psycopg2.connect(libpq_url(url), connect_timeout=CONNECT_TIMEOUT_SECONDS, **options)


# Sessions are in autocommit, so none should ever sit inside a transaction; one that does (a
# bug) is ended by PostgreSQL after this long, releasing its snapshot and its connection.
IDLE_IN_TRANSACTION_SECONDS = 60


def _session_options() -> str:
    """libpq ``options`` of every API session.

    - ``TimeZone=UTC``: the text timestamps the CSV parser reads.
    - ``enable_sort=off``: every read of ``data`` is in primary-key order, which the index
      gives; without fresh statistics (a table just seeded) PostgreSQL misjudged a chunk's
      rows and sorted the rest of the range for each chunk instead (0.3 s a chunk, not 0.02 s).
    - ``idle_in_transaction_session_timeout``: the backstop above, enforced by the server
      whatever happens in this process.
    """
    ms = IDLE_IN_TRANSACTION_SECONDS * 1000
    return f"-c TimeZone=UTC -c enable_sort=off -c idle_in_transaction_session_timeout={ms}"


def connect_reader(url: str, *, application_name: str) -> psycopg2.extensions.connection:
    """A read-only connection outside the pool (a stream's, or /health's), set up as the pool's."""
    conn = connect(
        url,
        options=_session_options(),
        application_name=application_name,
    )
    _read_only(conn, None)
    return conn


def create_engine(url: str) -> Engine:
    """A pooled, read-only engine for the API's short reads that notices a restarted database."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": _session_options(),
            "application_name": APPLICATION_NAME,
        },
    )
    sqlalchemy.event.listen(engine, "connect", _read_only)
    sqlalchemy.event.listen(engine, "checkout", _ping_if_idle)
    sqlalchemy.event.listen(engine, "checkin", _note_checkin)
    return engine


def _read_only(dbapi_connection, connection_record) -> None:
    """Read-only sessions in autocommit: every read is one statement, so one snapshot by
    PostgreSQL's own rule, with no BEGIN or ROLLBACK round trip and no transaction left open."""
    dbapi_connection.set_session(readonly=True, autocommit=True)


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


def read_turbines(conn: psycopg2.extensions.connection) -> list[tuple]:
    """The rows of the turbine table ordered by id; empty if it doesn't exist."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (TURBINE_TABLE,))
        if not cur.fetchone()[0]:
            return []
        cur.execute(TURBINES_QUERY)
        return cur.fetchall()


def _copy_query(
    variables: Sequence[str],
    turbines: Sequence[str] | None,
    start: datetime,
    end: datetime,
    limit: int | None,
) -> sql.Composed:
    """The COPY statement; identifiers come only from the catalogue, values are bound literals.

    Ordered by the primary key (turbine_id, timestamp), which the index gives: PostgreSQL sends
    the first rows at once and never sorts the range.
    """
    turbine, time_ = sql.Identifier(TURBINE_COLUMN), sql.Identifier(TIME_COLUMN)
    selected = [turbine, time_] + [
        sql.SQL("{}::float8").format(sql.Identifier(name)) for name in variables
    ]
    conditions = [
        sql.SQL("{} >= {}").format(time_, sql.Literal(start)),
        sql.SQL("{} < {}").format(time_, sql.Literal(end)),
    ]
    if turbines is not None:
        conditions.append(sql.SQL("{} = ANY({})").format(turbine, sql.Literal(list(turbines))))
    return sql.SQL(
        "COPY (SELECT {fields} FROM {table} WHERE {conditions}"
        " ORDER BY {turbine}, {time} LIMIT {limit}) TO STDOUT (FORMAT csv)"
    ).format(
        fields=sql.SQL(", ").join(selected),
        table=sql.Identifier(TABLE),
        conditions=sql.SQL(" AND ").join(conditions),
        turbine=turbine,
        time=time_,
        limit=sql.Literal(limit) if limit else sql.SQL("ALL"),
    )


TURBINE_TYPE = pa.dictionary(pa.int32(), pa.string())


def _parse(csv_rows: bytes, variables: Sequence[str]) -> pa.Table:
    """COPY's CSV rows as one Arrow table: ``turbine_id`` (dictionary-encoded), ``timestamp``
    (UTC microseconds), then one float64 per variable, NULL where the reading is missing."""
    names = [TURBINE_COLUMN, TIME_COLUMN, *variables]
    types = [TURBINE_TYPE, pa.timestamp("us", tz="UTC"), *(pa.float64() for _ in variables)]
    if not csv_rows:
        return pa.table([pa.array([], type=t) for t in types], names=names)
    # Positional names: a column named like a CSV keyword or with a comma needs no care.
    positional = [f"c{i}" for i in range(len(names))]
    table = pyarrow.csv.read_csv(
        io.BytesIO(csv_rows),
        read_options=pyarrow.csv.ReadOptions(column_names=positional),
        convert_options=pyarrow.csv.ConvertOptions(
            column_types=dict(zip(positional, types, strict=True)),
            null_values=[""],
            quoted_strings_can_be_null=False,
        ),
    ).rename_columns(names)
    # The reader parses in blocks, each with its own dictionary: one batch, one dictionary.
    return table if table.column(0).num_chunks == 1 else table.combine_chunks()


def read_table(
    conn: psycopg2.extensions.connection,
    variables: Sequence[str],
    turbines: Sequence[str] | None,
    start: datetime,
    end: datetime,
    *,
    limit: int | None = None,
) -> pa.Table:
    """Rows of ``[start, end)`` (the first ``limit``) in key order, in one table."""
    buffer = io.BytesIO()
    with conn.cursor() as cur:
        cur.copy_expert(_copy_query(variables, turbines, start, end, limit), buffer)
    return _parse(buffer.getvalue(), variables)


class _Cancelled(Exception):
    """The stream was closed while its COPY was still running."""


class _ChunkingSink:
    """The file COPY writes into: gathers rows and hands on ``chunk_rows`` at a time.

    PostgreSQL sends one message per row and psycopg2 writes each message on its own, so a cut
    between two writes is a cut between two rows. The hand-over queue holds two chunks: when
    the client reads slower than PostgreSQL sends, ``write`` waits, psycopg2 stops reading,
    and TCP holds PostgreSQL back, so memory stays at a few chunks whatever the range.
    """

    def __init__(self, out: queue.Queue, cancelled: threading.Event, chunk_rows: int) -> None:
        self._out, self._cancelled, self._chunk_rows = out, cancelled, chunk_rows
        self._rows: list[bytes] = []

    def write(self, row: bytes) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._chunk_rows:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self.put(b"".join(self._rows))
            self._rows = []

    def put(self, item: object) -> None:
        while not self._cancelled.is_set():
            try:
                self._out.put(item, timeout=0.1)
                return
            except queue.Full:
                pass
        raise _Cancelled


_END = object()


class RangeReader:
    """All rows of ``[start, end)`` in key order, as tables of at most ``chunk_rows`` rows.

    One ``COPY`` statement for the whole range, so one snapshot by PostgreSQL's own rule (no
    transaction is held open between chunks), and PostgreSQL produces the next rows while the
    current ones are parsed, encoded and sent: a thread runs the COPY into a bounded queue.
    :meth:`close` stops it wherever it is and ends the statement; the caller owns ``conn``.
    """

    def __init__(
        self,
        conn: psycopg2.extensions.connection,
        variables: Sequence[str],
        turbines: Sequence[str] | None,
        start: datetime,
        end: datetime,
        chunk_rows: int,
    ) -> None:
        self._conn, self._variables = conn, variables
        self._query = _copy_query(variables, turbines, start, end, None)
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._cancelled = threading.Event()
        self._sink = _ChunkingSink(self._queue, self._cancelled, chunk_rows)
        self._thread = threading.Thread(
            target=self._produce, name="connector-api COPY", daemon=True
        )
        self._thread.start()

    def _produce(self) -> None:
        try:
            with self._conn.cursor() as cur:
                cur.copy_expert(self._query, self._sink)
            self._sink.flush()
            self._sink.put(_END)
        except _Cancelled:
            pass
        except BaseException as error:  # handed to the reader, which raises it
            with suppress(_Cancelled):
                self._sink.put(error)

    def __iter__(self) -> Iterator[pa.Table]:
        while (item := self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield _parse(item, self._variables)

    def close(self) -> None:
        """Stop the COPY if it still runs (the server cancels the statement) and wait for it."""
        if not self._thread.is_alive():
            return
        self._cancelled.set()
        # If the statement already ended or the connection is gone there is nothing to stop.
        with suppress(psycopg2.Error):
            self._conn.cancel()
        self._thread.join(timeout=CONNECT_TIMEOUT_SECONDS)
