"""The calendar: constants, UTC microseconds, and the one split of rows by UTC day."""

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from wind_pipeline.etl import calendar
from wind_pipeline.etl.errors import InvalidInputError


def test_constants_agree_with_each_other():
    assert calendar.WINDOW_US == calendar.READINGS_PER_WINDOW * calendar.MINUTE_US
    assert calendar.DAY_US == calendar.MINUTES_PER_DAY * calendar.MINUTE_US
    assert calendar.WINDOWS_PER_DAY * calendar.WINDOW_US == calendar.DAY_US == 86_400_000_000


def test_microseconds_round_trip_and_naive_is_utc():
    moment = datetime(2024, 2, 29, 23, 59, 30, 123456, tzinfo=UTC)
    micros = calendar.to_utc_us(moment)
    assert micros == int(moment.timestamp()) * 1_000_000 + 123456
    assert calendar.from_utc_us(micros) == moment
    assert calendar.to_utc_us(moment.replace(tzinfo=None)) == micros
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert calendar.to_utc_us(plus_two) == micros
    assert calendar.day_of_us(micros) == date(2024, 2, 29)
    assert calendar.day_of_us(-1) == date(1969, 12, 31)


def test_day_range_and_days_between():
    assert calendar.day_range(date(2024, 12, 31)) == (
        datetime(2024, 12, 31, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert calendar.days_between(date(2024, 2, 28), date(2024, 3, 1)) == [
        date(2024, 2, 28),
        date(2024, 2, 29),
        date(2024, 3, 1),
    ]
    with pytest.raises(InvalidInputError, match="before the first day"):
        calendar.days_between(date(2024, 1, 2), date(2024, 1, 1))


def test_whole_days_refuses_a_range_off_midnight():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert calendar.whole_days(start, start + timedelta(days=2)) == [
        date(2024, 1, 1),
        date(2024, 1, 2),
    ]
    assert calendar.whole_days(start, start) == []
    with pytest.raises(InvalidInputError, match="not whole UTC days"):
        calendar.whole_days(start, start + timedelta(minutes=10))
    with pytest.raises(InvalidInputError, match="before start"):
        calendar.whole_days(start, start - timedelta(days=1))


def _table(micros):
    return pa.table(
        {
            "timestamp": pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "row": pa.array(range(len(micros)), pa.int64()),
        }
    )


def test_split_by_day_keeps_each_days_rows_in_their_order():
    day = calendar.DAY_US
    base = calendar.to_utc_us(datetime(2024, 1, 1, tzinfo=UTC))
    # Sorted by turbine then time, as the STATS table is: days interleave.
    micros = [base, base + day, base + 2 * day + 5, base + 1, base + day + 7, base + day - 1]
    parts = list(calendar.split_by_day(_table(micros)))
    assert [d for d, _ in parts] == [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)]
    assert [p.column("row").to_pylist() for _, p in parts] == [[0, 3, 5], [1, 4], [2]]


def test_split_by_day_of_one_day_is_the_table_and_of_none_is_nothing():
    base = calendar.to_utc_us(datetime(2024, 1, 1, tzinfo=UTC))
    table = _table([base + 3, base + 1])
    [(day, part)] = list(calendar.split_by_day(table))
    assert day == date(2024, 1, 1) and part.equals(table)
    assert list(calendar.split_by_day(_table([]))) == []


def test_split_by_day_skips_days_without_rows():
    base = calendar.to_utc_us(datetime(2024, 1, 1, tzinfo=UTC))
    micros = np.array([base, base + 3 * calendar.DAY_US])
    assert [d for d, _ in calendar.split_by_day(_table(micros))] == [
        date(2024, 1, 1),
        date(2024, 1, 4),
    ]
