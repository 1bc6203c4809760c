"""Connections to the target database, and the one place database failures become errors.

Two ways in, same PostgreSQL, same load (both hand out DBAPI connections through
``raw_connection()``, which is all ``load`` needs): ``create_engine`` (SQLAlchemy, for Dagster and
the migrations) and ``DirectDatabase`` (bare psycopg2, for ``wind-etl DATE``). The second stays
because of a budget, not a ratio: SQLAlchemy's import and engine cost a fresh process +0.29 s
(benchmarks/bench_wind_etl_cli.py: a 0.52 s run would take 0.81 s, over the 0.8 s budget of the
README's "Measured performance"; 1.56x, short of the 2x that would make it a trick worth keeping
on speed alone).

A refused or dropped connection is transient (``TargetUnavailableError``, retried by the callers
per day); any other database failure is terminal (``DatabaseError``).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from wind_pipeline.etl.errors import (
    DatabaseError,
    InvalidInputError,
    PipelineError,
    TargetUnavailableError,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

_SCHEME = re.compile(r"^(postgres|postgresql)(\+psycopg2)?://", re.IGNORECASE)
_PASSWORD = re.compile(r"(://[^:/@?]*:)[^@/?]*@")
# Alembic's head (schema.py's migrations); kept here so that the CLI can compare a database's
# version with it in one query, without importing SQLAlchemy or Alembic (a test checks they agree).
HEAD_REVISION = "0005"
HINT = "check --database-url or TARGET_DATABASE_URL, and that PostgreSQL is running"


class RawConnectionSource(Protocol):
    """Anything that hands out DBAPI connections: a SQLAlchemy Engine or a ``DirectDatabase``."""

    def raw_connection(self) -> Any: ...


def redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    return _PASSWORD.sub(r"\1***@", url)


def _check_scheme(url: str) -> re.Match[str]:
    match = _SCHEME.match(url)
    if match is None:
        raise InvalidInputError(
            f"unsupported database URL {redact(url)!r}",
            hint="use postgresql://… or postgresql+psycopg2://user:password@host:port/database",
        )
    return match


def create_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine on psycopg2, also for a bare ``postgresql://`` URL.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which is not installed.
    """
    import sqlalchemy as sa

    _check_scheme(url)
    try:
        parsed = sa.engine.make_url(url).set(drivername="postgresql+psycopg2")
    except sa.exc.ArgumentError as exc:
        message = f"malformed database URL {redact(url)!r}: {exc}"
        raise InvalidInputError(message, hint=HINT) from exc
    return sa.create_engine(parsed, pool_pre_ping=True)


class DirectDatabase:
    """psycopg2 connections from a URL, without SQLAlchemy (``wind-etl``; see the module doc).

    Like an engine's pool, it keeps the connection a caller closed cleanly and hands it to the
    next caller: a range loads one day per ``load`` call, and a fresh backend per day cost a
    60-day run 1.5-2x its time (3 ms to connect and warm the catalogue caches, per day).
    """

    def __init__(self, url: str) -> None:
        match = _check_scheme(url)
        self.url = url
        self._dsn = "postgresql://" + url[match.end() :]
        self._idle: Any = None
        self._lent: set[Any] = set()  # connections handed out and not given back yet

    def raw_connection(self) -> Any:
        import psycopg2

        conn, self._idle = self._idle, None
        if conn is None or conn.closed:
            conn = psycopg2.connect(self._dsn)
        self._lent.add(conn)
        return _Returned(conn, self)

    def cancel(self) -> None:
        """Ask the server to stop whatever the lent connections are running (safe from any
        thread): a day waiting on another run's lock rolls back instead of waiting on."""
        for conn in list(self._lent):
            with contextlib.suppress(Exception):
                conn.cancel()

    def dispose(self) -> None:
        """Close the idle connection; mirrors ``Engine.dispose``."""
        conn, self._idle = self._idle, None
        if conn is not None:
            conn.close()


class _Returned:
    """A connection whose ``close()`` gives it back to its ``DirectDatabase`` when reusable."""

    def __init__(self, conn: Any, owner: DirectDatabase) -> None:
        self._conn, self._owner = conn, owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def close(self) -> None:
        import psycopg2.extensions as ext

        conn = self._conn
        self._owner._lent.discard(conn)
        idle = not conn.closed and conn.get_transaction_status() == ext.TRANSACTION_STATUS_IDLE
        if idle and self._owner._idle is None:
            self._owner._idle = conn
        else:
            conn.close()


def is_database_error(exc: BaseException) -> bool:
    """True for driver and SQLAlchemy database errors (without importing either needlessly)."""
    psycopg2 = sys.modules.get("psycopg2")
    if psycopg2 is not None and isinstance(exc, psycopg2.Error):
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.DBAPIError)


# SQLSTATEs of a server going away: connection exceptions (class 08), and an administrator's,
# a crash's or a starting server's refusal (57P01-57P03). Retrying these is safe: a day is one
# transaction, so whatever it wrote before the connection dropped was rolled back.
_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03")


def is_connection_lost(exc: BaseException) -> bool:
    """True when the connection was refused or dropped, not when a statement was refused."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "pgcode", None)
    if code is not None:
        return code.startswith(_TRANSIENT_STATES)
    psycopg2 = sys.modules.get("psycopg2")
    if psycopg2 is None:
        return False
    # No SQLSTATE: libpq lost or never had the server (refused, reset, closed, timed out).
    return isinstance(orig, psycopg2.OperationalError | psycopg2.InterfaceError)


def first_line(error: BaseException) -> str:
    """The first line of a driver's message (it appends context lines), or the error's type."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def database_error(exc: BaseException, doing: str) -> PipelineError:
    """``TargetUnavailableError`` for a lost connection, else a one-line ``DatabaseError``."""
    orig = getattr(exc, "orig", None) or exc
    message = f"target database error while {doing}: {first_line(orig)}"
    if is_connection_lost(exc):
        return TargetUnavailableError(message, hint=HINT)
    hint = "create the schema first: wind-etl init-db" if _is_missing_table(orig) else HINT
    return DatabaseError(message, hint=hint)


@contextmanager
def database_errors(doing: str) -> Iterator[None]:
    """Let driver and SQLAlchemy errors out only as one of our two (transient or terminal)."""
    try:
        yield
    except Exception as exc:
        if is_database_error(exc):
            raise database_error(exc, doing) from exc
        raise


def _is_missing_table(exc: BaseException) -> bool:
    return getattr(exc, "pgcode", None) == "42P01"  # undefined_table


def connect(source: RawConnectionSource) -> Any:
    """A DBAPI connection from ``source``; a refused one becomes ``TargetUnavailableError``."""
    with database_errors("connecting"):
        return source.raw_connection()


def schema_version(source: RawConnectionSource) -> str | None:
    """The target's Alembic revision, None without ``alembic_version``: one query at head."""
    conn = connect(source)
    try:
        with database_errors("reading the schema version"), conn.cursor() as cur:
            try:
                cur.execute("SELECT max(version_num) FROM alembic_version")
            except Exception as exc:
                if not _is_missing_table(exc):
                    raise
                return None
            return cur.fetchone()[0]
    finally:
        conn.close()
