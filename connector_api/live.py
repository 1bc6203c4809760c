"""Live mode of ``connector-api serve --live``: the source keeps filling up minute by minute.

A minute's reading (labelled by its start) exists once the minute has passed, so the table
always holds every minute before the current one, and yesterday is complete after midnight.
Every turbine of the fleet gets each new minute; the fleet is the one in the ``turbine`` table
(one turbine when the source is new).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from connector_api import db, generator
from connector_api.outages import OutageWriter
from connector_api.schema import TABLE, TURBINE_TABLE, ensure_schema

log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)


def _now() -> datetime:
    return datetime.now(UTC)


def last_timestamp(database_url: str) -> datetime | None:
    """The newest reading's timestamp (creating the tables if needed), or None if empty."""
    return _state(database_url)[0]


def _state(database_url: str) -> tuple[datetime | None, int]:
    """The newest reading's timestamp and the fleet's size (at least 1)."""
    conn = db.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            ensure_schema(cur)
            cur.execute(f'SELECT max("timestamp") FROM {TABLE}')
            last = cur.fetchone()[0]
            cur.execute(f"SELECT count(*) FROM {TURBINE_TABLE}")
            return last, max(1, cur.fetchone()[0])
    finally:
        conn.close()


def catch_up(
    database_url: str,
    *,
    seed: int = 42,
    faults: bool = False,
    turbines: int | None = None,
    now: datetime | None = None,
) -> generator.SeedReport | None:
    """Write every minute from the last reading (or today's midnight) up to the current minute.

    For every turbine: ``turbines`` of them, or by default the fleet already in the source.
    """
    until = (now or _now()).replace(second=0, microsecond=0)
    last, fleet = _state(database_url)
    start = last + MINUTE if last else until.replace(hour=0, minute=0)
    if start >= until:
        return None
    return generator.write(
        database_url, start, until, seed=seed, faults=faults, turbines=turbines or fleet
    )


class LiveAppender(threading.Thread):
    """Appends each minute as it passes until ``stop()``; errors are logged and retried.

    With ``outages`` (``serve --live --outages``), that writer decides what each minute brings.
    """

    def __init__(
        self,
        database_url: str,
        *,
        seed: int = 42,
        faults: bool = False,
        turbines: int | None = None,
        clock: Callable[[], datetime] = _now,
        outages: OutageWriter | None = None,
    ) -> None:
        super().__init__(name="connector-api-live", daemon=True)
        self.database_url, self.seed, self.faults, self.clock = database_url, seed, faults, clock
        self.turbines, self.outages = turbines, outages
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                report = (
                    self.outages.tick(self.clock())
                    if self.outages
                    else catch_up(
                        self.database_url,
                        seed=self.seed,
                        faults=self.faults,
                        turbines=self.turbines,
                        now=self.clock(),
                    )
                )
                if report:
                    log.debug("live: appended %d row(s) up to %s", report.rows_written, report.end)
            except db.ERRORS as error:
                log.warning(
                    "live: could not append (retrying next minute): %s", db.first_line(error)
                )
            now = self.clock()
            next_minute = now.replace(second=0, microsecond=0) + MINUTE
            self._stopped.wait((next_minute - now).total_seconds() + 0.05)
