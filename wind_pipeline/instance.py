"""The Dagster instance's storage: dagster-postgres, named by ``DAGSTER_POSTGRES_URL``, with one
line instead of a traceback when that database is not there.

``dagster.yaml`` names this class (``storage: custom:``) rather than ``storage: postgres:`` with
``postgres_url: {env: DAGSTER_POSTGRES_URL}`` for one reason: every ``dagster`` command builds the
instance first, and a missing variable or a stopped server there is a 40-line traceback
(``DagsterInvalidConfigError``, ``OperationalError``). Typed in the repo root without a running
local stack, the user should read what to do instead. Everything else is dagster-postgres itself,
but for its connections: kept open and reused (``pooled``), where dagster-postgres opens one per
storage call outside the webserver; and for round trips per stored event that this Dagster line
does not need (``LeanEventLogStorage``).
"""

from __future__ import annotations

import os
import select
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS
from dagster._core.storage.event_log import SqlEventLogStorageTable
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage

from wind_pipeline import localenv
from wind_pipeline.etl.db import first_line

if TYPE_CHECKING:
    from dagster._core.events.log import EventLogEntry
    from dagster._serdes import ConfigurableClassData

URL_ENV = "DAGSTER_POSTGRES_URL"
PROBE_TIMEOUT_S = 3
PROBE_PATIENCE_S = 10  # a server being started (compose, a restart) gets this long to answer
# The pool of each of the three storages (runs, event log, schedules): two connections kept open
# (a storage call sometimes opens a second one inside the first: with one kept, that second was
# opened and closed each time, 6 connections for 3 runs instead of 3), more opened for threads
# that need them at once (the daemon's) and closed when handed back;
# reconnected after an hour, as the webserver does (which also sets a statement timeout; runs
# and the daemon keep none, as without a pool).
POOL_SIZE = 2
POOL_RECYCLE_S = 3600
POOL_MAX_OVERFLOW = 20
# A pooled connection handed back less than this long ago is trusted without a ping when its
# socket has nothing to read (``_checked_out``); one idle longer is pinged first.
TRUST_IDLE_S = 10.0
# The event log's connections commit without waiting for the WAL flush: each event is one
# autocommitted INSERT (about 200 in a 10-day run), and the flush was most of its round trip.
# What a crash of Dagster's PostgreSQL (not of the run) can cost: the events of the last few
# hundred ms, never a damaged database. The runs table keeps synchronous commits, and a
# synchronous commit flushes every WAL record before its own, so a run recorded as finished
# still has every event it logged before that; a run whose end was lost shows as not finished,
# as after a crash of the run itself, and its days are re-run (each load replaces its day).
# The target database is untouched by this setting.
ASYNC_COMMIT = "-c synchronous_commit=off"


class CheckedPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` on ``$DAGSTER_POSTGRES_URL``, checked to answer before use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shipped = self._event_log_storage
        # Tables are created (or found) by now: the lean one only writes and reads them.
        self._event_log_storage = LeanEventLogStorage(
            shipped.postgres_url, False, token_provider=shipped._token_provider
        )
        shipped._engine.dispose()
        pooled(self)

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: object
    ) -> CheckedPostgresStorage:
        return cls(postgres_url=checked_url(), inst_data=inst_data)


def pooled(storage: DagsterPostgresStorage) -> None:
    """Give the three storages a pool of connections instead of one connection per call.

    dagster-postgres builds its engines with ``NullPool`` (no connection kept per instance), so a
    run opens and authenticates a fresh PostgreSQL connection for each of its storage calls:
    per day of a range that is 3 materializations, 7 check results and their reads, dozens of
    connections. The engine here is the one dagster-postgres' own ``optimize_for_webserver``
    swaps in (what ``dagster-webserver`` does on start), with two connections kept instead of
    one and a dead connection replaced at checkout, so that a restart of Dagster's PostgreSQL
    costs a reconnect, as without a pool, not a failed run. Measured by
    benchmarks/bench_dagster_backfill.py ``--compare-pool`` (README).

    Which connections are pinged: a ping is a round trip (~2 ms on a loaded machine), and at one
    per checkout it was 1.1 s of an 8.2 s 10-turbine x 10-day run (572 checkouts). A connection
    the server closed (a restart, ``pg_terminate_backend``) has the server's goodbye or end of
    file waiting on its socket, which a zero-timeout ``select`` sees without a round trip: such a
    connection, or one idle over TRUST_IDLE_S (where a silent network loss is likelier), is
    pinged and replaced if the ping fails, as SQLAlchemy's ``pool_pre_ping`` does.
    """
    from dagster_postgres.utils import create_pg_engine

    for part in (storage.run_storage, storage.event_log_storage, storage.schedule_storage):
        old = part._engine  # the attribute all three dagster-postgres 0.29 storages use
        options = old.url.query.get("options")  # the URL's own ?options=, kept
        if part is storage.event_log_storage:
            options = f"{options or ''} {ASYNC_COMMIT}".strip()
        part._engine = create_pg_engine(
            part.postgres_url,
            part._token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=POOL_SIZE,
            max_overflow=POOL_MAX_OVERFLOW,
            pool_recycle=POOL_RECYCLE_S,
            connect_args={} if options is None else {"options": options},
        )
        sa.event.listen(part._engine, "checkin", _checked_in)
        sa.event.listen(part._engine, "checkout", _checked_out)
        old.dispose()


def _checked_in(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Ping a connection that may be dead; SQLAlchemy replaces it on ``DisconnectionError``."""
    idle = time.monotonic() - record.info.get("checked_in", float("-inf"))
    if idle < TRUST_IDLE_S and not dbapi_connection.closed:
        try:
            waiting, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            waiting = True
        if not waiting:
            return
    try:
        cursor = dbapi_connection.cursor()  # autocommit connections: no transaction left open
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception as exc:  # psycopg2's OperationalError or InterfaceError: a dead connection
        raise sa.exc.DisconnectionError(str(exc)) from exc


class LeanEventLogStorage(PostgresEventLogStorage):
    """dagster-postgres' event log, less two round trips per event that change nothing here.

    - ``has_table`` is asked before every asset check result and materialization (140 queries
      in a 10-day run); a table found once is remembered (Dagster never drops one while an
      instance lives; ``dagster instance migrate`` runs in a process of its own).
    - ``store_event`` sends ``NOTIFY run_events`` after each insert, which dagster-postgres keeps
      only for webservers older than this Dagster line (its own comment: LISTEN/NOTIFY is no
      longer used to watch events; they poll). pyproject.toml pins dagster-webserver to the same
      line, so nothing listens; the rest of ``store_event`` is dagster-postgres 0.29's.
    """

    _tables_found: frozenset[str] = frozenset()

    def has_table(self, table_name: str) -> bool:
        if table_name in self._tables_found:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_found = self._tables_found | {table_name}
        return found

    def store_event(self, event: EventLogEntry) -> None:
        insert = self.prepare_insert_event(event).returning(SqlEventLogStorageTable.c.id)
        with self._connect() as conn:
            event_id = int(conn.execute(insert).scalar_one())
        kind = event.dagster_event
        if kind is not None and kind.event_type in ASSET_EVENTS and kind.asset_key:
            with self.index_transaction() as conn:
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_event(conn, event, event_id)
        if kind is not None and kind.event_type in ASSET_CHECK_EVENTS:
            self.store_asset_check_event(event, event_id)


def checked_url() -> str:
    """The URL, once its server answers; else exit with one line saying what to do."""
    url = os.environ.get(URL_ENV)
    if not url:
        raise SystemExit(
            f"dagster: no local stack here (no ./.env written by wind-stack) and {URL_ENV} is "
            f"not set: {localenv.HOW_TO_START}; or set DAGSTER_HOME and {URL_ENV} yourself"
        )
    stack_dir = os.environ.get(localenv.STACK_DIR_ENV)
    error = _probe(url, patient=not stack_dir)
    if error is None:
        return url
    if stack_dir and not localenv.stack_running(stack_dir):
        raise SystemExit(f"dagster: {localenv.not_running_message(stack_dir)}")
    raise SystemExit(f"dagster: Dagster's PostgreSQL ({URL_ENV}) does not answer: {error}")


def _probe(url: str, *, patient: bool) -> str | None:
    """None when a connection opens; else the driver's first line. Retried for PROBE_PATIENCE_S
    unless the server is the local stack's, which is either running or not."""
    import psycopg2

    dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
    deadline = time.monotonic() + (PROBE_PATIENCE_S if patient else 0)
    while True:
        try:
            psycopg2.connect(dsn, connect_timeout=PROBE_TIMEOUT_S).close()
            return None
        except psycopg2.Error as exc:
            error = first_line(exc)
        if time.monotonic() >= deadline:
            return error
        time.sleep(1)
