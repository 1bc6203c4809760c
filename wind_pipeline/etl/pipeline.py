"""A range of days end to end, made only of fetch_catalogue, extract, transform and load.

Days go in blocks sized from the fleet (about ``BLOCK_READINGS`` readings per fetch), so memory
stays flat however long the range; each day is loaded in its own transaction, and a day whose
load loses the target connection is retried whole with backoff (the failed attempt rolled back).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import arrays
from wind_pipeline.etl.calendar import (
    DAY_US,
    MINUTES_PER_DAY,
    WINDOWS_PER_DAY,
    day_start,
    days_between,
    split_by_day,
    to_utc_us,
)
from wind_pipeline.etl.catalogue import fetch_catalogue
from wind_pipeline.etl.client import backoff_delay
from wind_pipeline.etl.errors import NoSourceDataError, TransientError
from wind_pipeline.etl.extract import extract
from wind_pipeline.etl.load import load
from wind_pipeline.etl.transform import transform

if TYPE_CHECKING:
    from wind_pipeline.etl.catalogue import Variable
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import RawConnectionSource

# Readings fetched and transformed at once: ~200k is ~10 MB of Arrow, a few tens of MB while the
# transform runs, and large enough that a fetch's fixed cost (~10 ms) is small beside it.
BLOCK_READINGS = 200_000
T = TypeVar("T")
# Retries of a day whose load lost the target (a restart takes seconds: waits 0.5, 1, 2, 4, 8,
# 10 s before jitter, about 25 s in all).
TARGET_RETRIES = 6
TARGET_BACKOFF = 0.5


@dataclass(frozen=True)
class DayReport:
    """What one day's run did; extract and transform seconds are its block's, shared per day."""

    day: date
    turbines: int
    rows_read: int
    windows: int
    rows_written: int
    rejected: int
    extract_seconds: float
    transform_seconds: float
    load_seconds: float
    attempts: int = 1

    def summary(self) -> str:
        retried = f", {self.attempts} attempts" if self.attempts > 1 else ""
        return (
            f"{self.day.isoformat()}: {self.turbines} turbine{'s' if self.turbines != 1 else ''}, "
            f"read {self.rows_read} rows, {self.windows} windows, {self.rejected} rejected, "
            f"wrote {self.rows_written} rows; extract {self.extract_seconds:.3f} s, "
            f"transform {self.transform_seconds:.3f} s, load {self.load_seconds:.3f} s{retried}"
        )


def days_per_block(turbines: int, readings: int = BLOCK_READINGS) -> int:
    """Days fetched at once for a fleet of ``turbines``, about ``readings`` each: at least one."""
    return max(1, readings // (max(1, turbines) * MINUTES_PER_DAY))


def blocks(days: list[date], size: int) -> Iterable[list[date]]:
    for i in range(0, len(days), size):
        yield days[i : i + size]


def rows_per_day(raw: pa.Table, days: list[date]) -> np.ndarray:
    """Readings per day of ``days`` (consecutive) in a RAW table; rows outside are not counted."""
    micros = arrays.to_numpy(raw.column("timestamp"), np.int64)
    index = (micros - to_utc_us(day_start(days[0]))) // DAY_US
    return np.bincount(index[(index >= 0) & (index < len(days))], minlength=len(days))


def refuse_empty_days(days: list[date], rows: np.ndarray, *, hint: str) -> None:
    """``NoSourceDataError`` naming the days without any reading (a source not filled yet)."""
    empty = [day.isoformat() for day, n in zip(days, rows, strict=True) if not n]
    if empty:
        listed = ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise NoSourceDataError(
            f"no source data for {listed}", hint=f"seed or wait for the source, {hint}"
        )


def run_range(
    client: ConnectorClient,
    target: RawConnectionSource,
    first: date,
    last: date,
    *,
    variables: str | Sequence[str] | None = None,
    turbines: str | Sequence[str] | None = None,
    qc: bool = True,
    allow_empty: bool = False,
    on_day: Callable[[DayReport], None] | None = None,
    target_retries: int = TARGET_RETRIES,
    block_readings: int = BLOCK_READINGS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[DayReport]:
    """Extract, transform and load ``first``..``last`` (inclusive); one report per day.

    ``variables`` None means the default pair, ``turbines`` None every turbine of the source.
    A block whose fetch finds a day without any reading is refused (``NoSourceDataError``)
    before that block writes anything, unless ``allow_empty`` (days of earlier blocks stay
    loaded: each day is its own transaction).
    """
    days = days_between(first, last)
    catalogue = fetch_catalogue(client)
    names = catalogue.select_variables(variables)
    fleet = catalogue.select_turbines(turbines)
    limits = catalogue.limits(names)
    asked = None if fleet == catalogue.turbines else fleet
    reports: list[DayReport] = []
    for block in blocks(days, days_per_block(len(fleet), block_readings)):
        start, end = day_start(block[0]), day_start(block[-1] + timedelta(days=1))
        began = time.perf_counter()
        raw = extract(client, start, end, names, asked)
        read = rows_per_day(raw, block)
        if not allow_empty:
            refuse_empty_days(block, read, hint="or pass --allow-empty to write zero counts")
        extracted = time.perf_counter()
        result = transform(raw, start, end, turbines=fleet, variables=limits, qc=qc)
        del raw
        transformed = time.perf_counter()
        share = (extracted - began) / len(block), (transformed - extracted) / len(block)
        parts = dict(split_by_day(result.stats))
        for offset, day in enumerate(block):
            stats = parts[day]
            load_began = time.perf_counter()
            written, attempts = _load_with_retries(target, stats, limits, target_retries, sleep)
            report = DayReport(
                day=day,
                turbines=len(fleet),
                rows_read=int(read[offset]),
                windows=WINDOWS_PER_DAY * len(fleet),
                rows_written=written,
                rejected=int(np.sum(arrays.to_numpy(stats.column("rejected"), np.int64))),
                extract_seconds=share[0],
                transform_seconds=share[1],
                load_seconds=time.perf_counter() - load_began,
                attempts=attempts,
            )
            reports.append(report)
            if on_day is not None:
                on_day(report)
    return reports


def _load_with_retries(
    target: RawConnectionSource,
    stats: pa.Table,
    limits: Mapping[str, Variable],
    retries: int,
    sleep: Callable[[float], None],
) -> tuple[int, int]:
    """Rows written and attempts made; a transient failure of the day is retried whole."""
    return retrying(lambda: sum(load(target, stats, limits).values()), retries, sleep)


def retrying(
    work: Callable[[], T], retries: int, sleep: Callable[[float], None] = time.sleep
) -> tuple[T, int]:
    """``work()``'s result and the attempts it took, retrying ``TransientError`` with backoff.

    The one rule for the target: a refused or dropped connection is worth another try, whether
    it happens before the first day (the schema check) or during one (its load).
    """
    attempt = 0
    while True:
        try:
            return work(), attempt + 1
        except TransientError:
            if attempt >= retries:
                raise
            sleep(backoff_delay(attempt, TARGET_BACKOFF))
            attempt += 1
