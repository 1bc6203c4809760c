"""The spine every caller walks: ``select`` → ``extract_days`` → ``transform_days`` → ``load_day``.

``wind-etl`` (``run_range``, below) and the three Dagster assets are loops over these four and
nothing else, so a rule about a day (an empty day, the turbines it replaces, its transaction)
holds for both. ``select`` reads the catalogue once per run or range. ``extract_days`` hands out
days in blocks sized from the fleet (about ``BLOCK_READINGS`` readings per fetch), so memory stays
flat however long the range. ``load_day`` loads one day in its own transaction; ``run_range``
retries a day whose load loses the target whole, with backoff (the failed attempt rolled back).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import arrays
from wind_pipeline.etl.ahead import ahead
from wind_pipeline.etl.calendar import (
    DAY_US,
    MINUTES_PER_DAY,
    WINDOWS_PER_DAY,
    day_start,
    days_between,
    split_by_day,
    to_utc_us,
)
from wind_pipeline.etl.errors import NoSourceDataError
from wind_pipeline.etl.extract import BLOCK_READINGS, extract
from wind_pipeline.etl.load import InTransaction, load_day
from wind_pipeline.etl.retries import TARGET_RETRIES, retrying
from wind_pipeline.etl.selection import Selection, select
from wind_pipeline.etl.transform import Transformed, transform

if TYPE_CHECKING:
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import RawConnectionSource

__all__ = [
    "Block",
    "DayReport",
    "InTransaction",
    "Selection",
    "extract_days",
    "load_day",
    "run_range",
    "select",
    "transform_days",
]


@dataclass(frozen=True)
class Block:
    """Consecutive days' readings from one fetch, and how many readings each day has."""

    days: tuple[date, ...]
    raw: pa.Table
    readings: tuple[int, ...]
    seconds: float  # the fetch's

    def by_day(self) -> Iterator[tuple[date, pa.Table]]:
        """``(day, its readings)`` for every day in order, an empty table for a day without;
        lazily, so only the day being handed out is gathered beside the block."""
        parts = split_by_day(self.raw)  # in day order, days with readings only
        pending = next(parts, None)
        for day in self.days:
            if pending is not None and pending[0] == day:
                yield pending
                pending = next(parts, None)
            else:
                yield day, self.raw.slice(0, 0)


def days_per_block(turbines: int, readings: int = BLOCK_READINGS) -> int:
    """Days fetched at once for a fleet of ``turbines``, about ``readings`` each: at least one."""
    return max(1, readings // (max(1, turbines) * MINUTES_PER_DAY))


def extract_days(
    client: ConnectorClient,
    days: Sequence[date],
    selection: Selection,
    *,
    allow_empty: bool = False,
    block_readings: int = BLOCK_READINGS,
    empty_hint: str = "or pass --allow-empty to write zero counts",
) -> Iterator[Block]:
    """The readings of ``days`` (consecutive, in order), one bounded block at a time.

    A block with a day without any reading is refused (``NoSourceDataError``, its message ending
    with ``empty_hint``) before it is handed out, unless ``allow_empty``: the days of earlier
    blocks are the caller's already.
    """
    size = days_per_block(len(selection.turbines), block_readings)
    for i in range(0, len(days), size):
        block = tuple(days[i : i + size])
        began = time.perf_counter()
        end = day_start(block[-1] + timedelta(days=1))
        raw = extract(client, day_start(block[0]), end, selection.columns, selection.asked)
        readings = _readings_per_day(raw, block)
        if not allow_empty:
            _refuse_empty_days(block, readings, hint=empty_hint)
        yield Block(block, raw, tuple(int(n) for n in readings), time.perf_counter() - began)


def _readings_per_day(raw: pa.Table, days: Sequence[date]) -> np.ndarray:
    """Readings per day of ``days`` (consecutive) in a RAW table; rows outside are not counted."""
    micros = arrays.to_numpy(raw.column("timestamp"), np.int64)
    index = (micros - to_utc_us(day_start(days[0]))) // DAY_US
    return np.bincount(index[(index >= 0) & (index < len(days))], minlength=len(days))


def _refuse_empty_days(days: Sequence[date], rows: np.ndarray, *, hint: str) -> None:
    empty = [day.isoformat() for day, n in zip(days, rows, strict=True) if not n]
    if empty:
        listed = ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise NoSourceDataError(
            f"no source data for {listed}", hint=f"seed or wait for the source, {hint}"
        )


def transform_days(
    raw: pa.Table, days: Sequence[date], selection: Selection, *, qc: bool = True
) -> Transformed:
    """``transform`` over the whole days ``days`` (consecutive) for the selection."""
    start, end = day_start(days[0]), day_start(days[-1] + timedelta(days=1))
    return transform(
        raw, start, end, turbines=selection.turbines, variables=selection.limits, qc=qc
    )


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
    within_day: Callable[[date], InTransaction | None] | None = None,
    selection: Selection | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[DayReport]:
    """Extract, transform and load ``first``..``last`` (inclusive); one report per day.

    ``variables`` None means the default pair, ``turbines`` None every turbine of the source.
    A block whose fetch finds a day without any reading is refused (``NoSourceDataError``)
    before that block writes anything, unless ``allow_empty`` (days of earlier blocks stay
    loaded: each day is its own transaction). ``within_day(day)`` gives the work, if any, to add
    to that day's transaction (``load_day``'s ``within``).
    ``selection`` (from ``select``) replaces ``variables`` and ``turbines`` for a caller that runs
    several ranges on one read of the catalogue.
    """
    if selection is None:
        selection = select(client, variables, turbines)
    days = days_between(first, last)
    reports: list[DayReport] = []
    blocks = extract_days(
        client, days, selection, allow_empty=allow_empty, block_readings=block_readings
    )
    for block in ahead(blocks):  # the next block fetched while this one is transformed and loaded
        began = time.perf_counter()
        stats = transform_days(block.raw, block.days, selection, qc=qc).stats
        share = block.seconds / len(block.days), (time.perf_counter() - began) / len(block.days)
        parts = dict(split_by_day(stats))
        for day, read in zip(block.days, block.readings, strict=True):
            part = parts.pop(day, stats.slice(0, 0))
            load_began = time.perf_counter()
            written, attempts = retrying(
                lambda d=day, p=part: load_day(
                    target,
                    d,
                    p,
                    turbines=selection.turbines,
                    variables=selection.limits,
                    within=within_day(d) if within_day is not None else None,
                ),
                target_retries,
                sleep,
            )
            report = DayReport(
                day=day,
                turbines=len(selection.turbines),
                rows_read=read,
                windows=WINDOWS_PER_DAY * len(selection.turbines),
                rows_written=written,
                rejected=int(np.sum(arrays.to_numpy(part.column("rejected"), np.int64))),
                extract_seconds=share[0],
                transform_seconds=share[1],
                load_seconds=time.perf_counter() - load_began,
                attempts=attempts,
            )
            reports.append(report)
            if on_day is not None:
                on_day(report)
    return reports
