"""A range of days end to end: one fetch, one transform, one load transaction per day."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from wind_pipeline.etl.errors import InvalidInputError, NoSourceDataError
from wind_pipeline.etl.extract import extract_readings
from wind_pipeline.etl.load import load_days
from wind_pipeline.etl.transform import DAY_US, WINDOW_US, compute_stats, to_utc_us

if TYPE_CHECKING:
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import RawConnectionSource

WINDOWS_PER_DAY = DAY_US // WINDOW_US


@dataclass(frozen=True)
class DayReport:
    """What one day's run did; extract and transform seconds are the range's, shared per day."""

    day: date
    rows_read: int
    windows: int
    rows_written: int
    extract_seconds: float
    transform_seconds: float
    load_seconds: float

    def summary(self) -> str:
        return (
            f"{self.day.isoformat()}: read {self.rows_read} rows, {self.windows} windows, "
            f"wrote {self.rows_written} rows; extract {self.extract_seconds:.3f} s, "
            f"transform {self.transform_seconds:.3f} s, load {self.load_seconds:.3f} s"
        )


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_between(first_day: date, last_day: date) -> list[date]:
    """``first_day`` to ``last_day`` inclusive."""
    if last_day < first_day:
        raise InvalidInputError(
            f"the last day {last_day.isoformat()} is before the first day {first_day.isoformat()}"
        )
    return [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]


def count_rows_per_day(timestamps_us: np.ndarray, days: list[date]) -> np.ndarray:
    """Readings per day of ``days`` (consecutive); rows outside them are not counted."""
    day_of_row = (np.asarray(timestamps_us) - to_utc_us(day_start(days[0]))) // DAY_US
    day_of_row = day_of_row[(day_of_row >= 0) & (day_of_row < len(days))]
    return np.bincount(day_of_row, minlength=len(days))


def refuse_empty_days(days: list[date], rows_per_day: np.ndarray, *, hint: str) -> None:
    """``NoSourceDataError`` naming the days without any reading (a source not filled yet)."""
    empty = [day.isoformat() for day, rows in zip(days, rows_per_day, strict=True) if not rows]
    if empty:
        listed = ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise NoSourceDataError(
            f"no source data for {listed}", hint=f"seed or wait for the source, {hint}"
        )


def run_range(
    client: ConnectorClient,
    engine: RawConnectionSource,
    first_day: date,
    last_day: date,
    variables: Sequence[str],
    *,
    allow_empty: bool = False,
    on_day: Callable[[DayReport], None] | None = None,
) -> list[DayReport]:
    """Extract, transform and load ``first_day``..``last_day``; one report per day.

    Refuses (``NoSourceDataError``, naming the days) before writing anything when a day has no
    source rows, unless ``allow_empty``: an empty day usually means the source is not filled yet.
    """
    days = days_between(first_day, last_day)
    start, end = day_start(days[0]), day_start(days[-1] + timedelta(days=1))

    began = time.perf_counter()
    readings = extract_readings(client, start, end, variables)
    extracted = time.perf_counter()
    rows_per_day = count_rows_per_day(readings.timestamps_us, days)
    if not allow_empty:
        refuse_empty_days(days, rows_per_day, hint="or pass --allow-empty to write zero counts")
    stats = compute_stats(readings, start, end)
    transformed = time.perf_counter()

    reports = _Reports(days, rows_per_day, extracted - began, transformed - extracted, on_day)
    load_days(engine, stats, on_day=reports.committed)
    return [reports.by_day[day] for day in days]


class _Reports:
    """Each day's report, built as the day commits and passed to ``on_day`` in day order.

    Extract and transform ran once for the range, so each day gets an equal share of them;
    load seconds are the wall time since the previous commit (days load two at a time).
    """

    def __init__(
        self,
        days: list[date],
        rows_per_day: np.ndarray,
        extract_s: float,
        transform_s: float,
        on_day: Callable[[DayReport], None] | None,
    ) -> None:
        self.days, self.rows_per_day, self.on_day = days, rows_per_day, on_day
        self.extract_s, self.transform_s = extract_s / len(days), transform_s / len(days)
        self.by_day: dict[date, DayReport] = {}
        self.last_commit = time.perf_counter()
        self.passed = 0

    def committed(self, day: date, written: int) -> None:
        now = time.perf_counter()
        self.by_day[day] = DayReport(
            day=day,
            rows_read=int(self.rows_per_day[(day - self.days[0]).days]),
            windows=WINDOWS_PER_DAY,
            rows_written=written,
            extract_seconds=self.extract_s,
            transform_seconds=self.transform_s,
            load_seconds=now - self.last_commit,
        )
        self.last_commit = now
        while self.passed < len(self.days) and self.days[self.passed] in self.by_day:
            if self.on_day is not None:
                self.on_day(self.by_day[self.days[self.passed]])
            self.passed += 1
