"""Days and windows on the UTC clock: the constants and the one function that splits rows by day.

Every module that needs a day, a window or a microsecond timestamp takes it from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from wind_pipeline.etl.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

MINUTE_US = 60_000_000
WINDOW_US = 10 * MINUTE_US  # statistics windows [t, t + 10 min), labelled by t
MINUTES_PER_DAY = 1440
DAY_US = MINUTES_PER_DAY * MINUTE_US
WINDOWS_PER_DAY = 144
READINGS_PER_WINDOW = 10

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)


def to_utc_us(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_utc_us(micros: int) -> datetime:
    """The aware UTC datetime of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=int(micros))


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_range(day: date) -> tuple[datetime, datetime]:
    """``[midnight, next midnight)`` of ``day`` in UTC."""
    start = day_start(day)
    return start, start + timedelta(days=1)


def day_of_us(micros: int) -> date:
    """The UTC day holding the instant ``micros``."""
    return _EPOCH_DAY + timedelta(days=int(micros // DAY_US))


def days_between(first: date, last: date) -> list[date]:
    """``first`` to ``last`` inclusive; refuses a reversed range."""
    if last < first:
        raise InvalidInputError(
            f"the last day {last.isoformat()} is before the first day {first.isoformat()}"
        )
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def whole_days(start: datetime, end: datetime) -> list[date]:
    """The days of ``[start, end)``, which must both be UTC midnights."""
    start_us, end_us = to_utc_us(start), to_utc_us(end)
    if start_us % DAY_US or end_us % DAY_US:
        raise InvalidInputError(
            f"the range {start.isoformat()} to {end.isoformat()} is not whole UTC days",
            hint="start and end must be midnights in UTC",
        )
    if end_us < start_us:
        raise InvalidInputError(f"end {end.isoformat()} is before start {start.isoformat()}")
    first = day_of_us(start_us)
    return [first + timedelta(days=i) for i in range((end_us - start_us) // DAY_US)]


def split_by_day(table: pa.Table, column: str = "timestamp") -> Iterator[tuple[date, pa.Table]]:
    """``(day, rows of that UTC day)`` in day order; each part keeps the rows' order.

    The tables of this pipeline are sorted by (turbine, …, timestamp), not by time, so each
    day's rows are gathered with one ``take`` of their positions rather than sliced.
    """
    import numpy as np

    from wind_pipeline.etl.arrays import from_numpy, to_numpy

    if table.num_rows == 0:
        return
    micros = to_numpy(table.column(column), np.int64)
    days = micros // DAY_US
    first, last = int(days.min()), int(days.max())
    if first == last:
        yield _EPOCH_DAY + timedelta(days=first), table
        return
    order = np.argsort(days, kind="stable")
    bounds = np.searchsorted(days[order], np.arange(first, last + 2))
    for offset in range(last - first + 1):
        lo, hi = bounds[offset], bounds[offset + 1]
        if hi > lo:
            # An Arrow array: given numpy indices, pyarrow imports pandas (0.3 s, once a run).
            yield _EPOCH_DAY + timedelta(days=first + offset), table.take(from_numpy(order[lo:hi]))
