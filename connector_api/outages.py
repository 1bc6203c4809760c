"""Communication outages of ``connector-api serve --live --outages``: late readings, on purpose.

A real turbine's controller buffers its readings through a communication outage and uploads
them hours later, which is what the pipeline's ``sync`` must catch. Here, for every turbine and
every whole hour, an outage starts with probability :data:`OUTAGE_PROBABILITY_PER_HOUR` (about
one a day per turbine), lasts 1 to 6 whole hours, and its readings are delivered together
10 minutes to 3 hours after it ends. Every draw is a pure function of (seed, turbine, hour), so
a plan is the same in every process and :func:`delivered_at` can be tested without a clock.

:class:`OutageWriter` is the live writer under such a plan: at each tick it inserts the
readings delivered since the previous tick (new minutes, and late ones), insert-or-ignore.
"""

from __future__ import annotations

import io
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pyarrow as pa

from connector_api import db, generator
from connector_api.calendar import MINUTE, MINUTE_US, to_us
from connector_api.schema import (
    TABLE,
    TIME_COLUMN,
    TURBINE_COLUMN,
    TURBINE_PROPERTIES,
    TURBINE_TABLE,
    ensure_schema,
)
from connector_api.versions import SUMMARY_TABLE

log = logging.getLogger(__name__)

OUTAGE_PROBABILITY_PER_HOUR = 1 / 24  # per turbine: about one outage a day
OUTAGE_HOURS = (1, 6)  # whole hours, uniform
DELAY_MINUTES = (10, 180)  # from the outage's end to the delivery of its readings, uniform
HOUR = timedelta(hours=1)
# The latest a reading can arrive after its minute: the longest outage and the longest delay.
MAX_LATENESS = OUTAGE_HOURS[1] * HOUR + DELAY_MINUTES[1] * MINUTE

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Outage:
    """Readings of ``[start, end)`` withheld by ``turbine`` and delivered at ``delivered``."""

    turbine: str
    start: datetime
    end: datetime
    delivered: datetime


def outage_starting(seed: int, turbine: str, hour: datetime) -> Outage | None:
    """The outage that starts at ``hour`` (a whole UTC hour) for ``turbine``, if any.

    Drawn from a stream keyed by its arguments (a string seed is hashed by SHA-512, never by
    Python's per-process hash), so every process draws the same plan.
    """
    draw = random.Random(f"outage:{seed}:{turbine}:{hour:%Y-%m-%dT%H}")
    if draw.random() >= OUTAGE_PROBABILITY_PER_HOUR:
        return None
    end = hour + draw.randint(*OUTAGE_HOURS) * HOUR
    return Outage(turbine, hour, end, end + draw.randint(*DELAY_MINUTES) * MINUTE)


def outages(seed: int, turbine: str, start: datetime, end: datetime) -> list[Outage]:
    """The outages of ``turbine`` that withhold a minute of ``[start, end)``, by start."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hour -= (OUTAGE_HOURS[1] - 1) * HOUR  # the earliest start that can still cover ``start``
    found = []
    while hour < end:
        outage = outage_starting(seed, turbine, hour)
        if outage is not None and outage.end > start:
            found.append(outage)
        hour += HOUR
    return found


def delivered_at(seed: int, turbine: str, minute: datetime) -> datetime:
    """When the reading of ``minute`` reaches the source.

    Once the minute has passed, unless an outage withholds it: then when that outage's readings
    are delivered (the latest delivery, where two outages overlap).
    """
    late = [o.delivered for o in outages(seed, turbine, minute, minute + MINUTE)]
    return max([minute + MINUTE, *late])


def delivery_us(seed: int, rows: pa.Table) -> np.ndarray:
    """:func:`delivered_at` of every row of a generated table, as microseconds since 1970."""
    if rows.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    stamps = rows.column(TIME_COLUMN).combine_chunks().cast(pa.int64()).to_numpy()
    ids = rows.column(TURBINE_COLUMN).combine_chunks()
    if isinstance(ids.type, pa.DictionaryType):
        ids = ids.dictionary_decode()
    turbines = np.asarray(ids.to_pylist(), dtype=object)
    delivery = stamps + MINUTE_US
    first, last = (_EPOCH + int(v) * _US for v in (stamps.min(), stamps.max()))
    for turbine in np.unique(turbines):
        mine = turbines == turbine
        for outage in outages(seed, str(turbine), first, last + MINUTE):
            inside = mine & (stamps >= to_us(outage.start)) & (stamps < to_us(outage.end))
            delivery[inside] = np.maximum(delivery[inside], to_us(outage.delivered))
    return delivery


@dataclass(frozen=True)
class Tick:
    """What one tick inserted: rows, of which late ones, and the newest minute written."""

    rows_written: int
    late_rows: int
    end: datetime


class OutageWriter:
    """The live writer under an outage plan: each :meth:`tick` inserts what is due by then.

    Due: every reading of a minute past whose delivery time has come. A tick considers the
    minutes from the newest reading (or today's midnight) back by :data:`MAX_LATENESS`, and
    writes those new since the previous tick; the first tick of a process writes every due one
    (insert-or-ignore), so a restart delivers what was due while it was down.
    """

    def __init__(
        self,
        database_url: str,
        *,
        seed: int = 42,
        faults: bool = False,
        turbines: int | None = None,
    ) -> None:
        self.database_url, self.seed = database_url, seed
        self.faults, self.turbines = faults, turbines
        self._since: datetime | None = None  # the previous tick's time

    def tick(self, now: datetime) -> Tick | None:
        """Insert the readings delivered by ``now`` and not before the previous tick."""
        until = now.astimezone(UTC).replace(second=0, microsecond=0)
        conn = db.connect(self.database_url)
        try:
            with conn, conn.cursor() as cur:
                ensure_schema(cur)
                # the newest reading and the source's first day, by the summary's key (a max
                # over `data` would read every row: its key leads with the turbine)
                cur.execute(
                    f"SELECT (SELECT max(last_timestamp) FROM {SUMMARY_TABLE}"
                    f"        WHERE day = (SELECT max(day) FROM {SUMMARY_TABLE})),"
                    f" (SELECT min(day) FROM {SUMMARY_TABLE})"
                )
                last, first_day = cur.fetchone()
                cur.execute(f"SELECT count(*) FROM {TURBINE_TABLE}")
                fleet = self.turbines or max(1, cur.fetchone()[0])
                frontier = last + MINUTE if last else until.replace(hour=0, minute=0)
                # a reading due since the previous tick is at most MAX_LATENESS older than it,
                # and that tick had written up to the frontier; nothing before the source began
                start = frontier - MAX_LATENESS if last else frontier
                if first_day is not None:
                    start = max(start, datetime.combine(first_day, time(), tzinfo=UTC))
                if start >= until:
                    self._since = now
                    return None
                rows = generator.generate(
                    start, until, seed=self.seed, turbines=fleet, faults=self.faults
                )
                due = self._due(rows, frontier, now)
                written = _insert(cur, rows.filter(pa.array(due)), fleet)
        finally:
            conn.close()
        stamps = rows.column(TIME_COLUMN).cast(pa.int64()).to_numpy()
        late = int(np.count_nonzero(due & (stamps < to_us(frontier))))
        if late and written:
            log.info("outages: %d withheld reading(s) delivered late", late)
        self._since = now
        return Tick(rows_written=written, late_rows=late, end=until) if written else None

    def _due(self, rows: pa.Table, frontier: datetime, now: datetime) -> np.ndarray:
        delivery = delivery_us(self.seed, rows)
        due = delivery <= to_us(now)
        if self._since is None:
            return due
        stamps = rows.column(TIME_COLUMN).cast(pa.int64()).to_numpy()
        return due & ((stamps >= to_us(frontier)) | (delivery > to_us(self._since)))


def _insert(cur, rows: pa.Table, turbines: int) -> int:
    """Insert-or-ignore ``rows`` (and the fleet's turbines); the rows actually inserted."""
    if rows.num_rows == 0:
        return 0
    cur.execute("SET LOCAL TimeZone = 'UTC'")  # the CSV's timestamps are naive UTC
    fields = ("id", *TURBINE_PROPERTIES)
    cur.executemany(
        f"INSERT INTO {TURBINE_TABLE} ({', '.join(fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT (id) DO NOTHING",
        [tuple(getattr(t, f) for f in fields) for t in generator.farm(turbines)],
    )
    names = ", ".join(f'"{name}"' for name in rows.column_names)
    cur.execute(f"CREATE TEMP TABLE incoming (LIKE {TABLE}) ON COMMIT DROP")
    cur.copy_expert(
        f"COPY incoming ({names}) FROM STDIN (FORMAT csv)", io.BytesIO(generator.to_csv(rows))
    )
    cur.execute(
        f"INSERT INTO {TABLE} ({names}) SELECT {names} FROM incoming"
        f' ON CONFLICT ({TURBINE_COLUMN}, "{TIME_COLUMN}") DO NOTHING'
    )
    return cur.rowcount
