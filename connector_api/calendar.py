"""The source's clock: one reading per UTC minute, days from midnight to midnight.

The connector API and its generator take these constants from here (the pipeline keeps its own
copy: the two packages never import each other).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

MINUTE = timedelta(minutes=1)
MINUTE_US = 60_000_000
MINUTES_PER_DAY = 1440
DAY_US = MINUTES_PER_DAY * MINUTE_US

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def midnight(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware ``moment``."""
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
