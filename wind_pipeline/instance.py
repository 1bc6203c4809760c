"""The Dagster instance's storage: dagster-postgres, named by ``DAGSTER_POSTGRES_URL``, with one
line instead of a traceback when that database is not there.

``dagster.yaml`` names this class (``storage: custom:``) rather than ``storage: postgres:`` with
``postgres_url: {env: DAGSTER_POSTGRES_URL}`` for one reason: every ``dagster`` command builds the
instance first, and a missing variable or a stopped server there is a 40-line traceback
(``DagsterInvalidConfigError``, ``OperationalError``). Typed in the repo root without a running
local stack, the user should read what to do instead. Everything else is dagster-postgres itself.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from dagster_postgres import DagsterPostgresStorage

from wind_pipeline import localenv
from wind_pipeline.etl.db import first_line

if TYPE_CHECKING:
    from dagster._serdes import ConfigurableClassData

URL_ENV = "DAGSTER_POSTGRES_URL"
PROBE_TIMEOUT_S = 3
PROBE_PATIENCE_S = 10  # a server being started (compose, a restart) gets this long to answer


class CheckedPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` on ``$DAGSTER_POSTGRES_URL``, checked to answer before use."""

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: object
    ) -> CheckedPostgresStorage:
        return cls(postgres_url=checked_url(), inst_data=inst_data)


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
