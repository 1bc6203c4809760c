"""Ten-minute statistics of one-minute readings, quality-controlled (README "Data quality").

Arrow in (the RAW table of ``extract``), Arrow out (the STATS and QUALITY tables); the arithmetic
in between is numpy, vectorised over every turbine, day and window at once, so a year of a
turbine is one call of a few tens of milliseconds. A circular variable (a direction) gets the
circular statistics of ``circular``; the derived ``yaw_error`` is computed per minute from its two
source columns where both readings are valid (README "Directions").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import arrays, circular, quality
from wind_pipeline.etl.calendar import (
    DAY_US,
    MINUTE_US,
    MINUTES_PER_DAY,
    WINDOW_US,
    WINDOWS_PER_DAY,
    to_utc_us,
    whole_days,
)
from wind_pipeline.etl.catalogue import Variable, source_columns
from wind_pipeline.etl.errors import InvalidInputError

UTC_US = pa.timestamp("us", tz="UTC")
_EPOCH_DAY = date(1970, 1, 1)  # date32 counts days from it
STATS_SCHEMA = pa.schema(
    [
        ("turbine_id", pa.string()),
        ("timestamp", UTC_US),
        ("variable", pa.string()),
        ("mean", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("std", pa.float64()),
        ("count", pa.int64()),
        ("rejected", pa.int64()),
    ]
)
# Per (turbine, day, variable): readings expected, and how many got each status (docs/rules.md).
QUALITY_COUNTS = ("expected", *quality.REASONS)
QUALITY_SCHEMA = pa.schema(
    [("turbine_id", pa.string()), ("day", pa.date32()), ("variable", pa.string())]
    + [(name, pa.int64()) for name in QUALITY_COUNTS]
)


@dataclass(frozen=True)
class Transformed:
    """The statistics of every window, and the quality counts of every day, of a range."""

    stats: pa.Table
    quality: pa.Table


def transform(
    raw: pa.Table,
    start: datetime,
    end: datetime,
    *,
    turbines: Sequence[str],
    variables: Mapping[str, Variable],
    qc: bool = True,
) -> Transformed:
    """Every window of ``[start, end)`` (whole UTC days) for every turbine and variable.

    Readings outside the range or of other turbines are ignored; a turbine without readings
    still gets its windows (count 0). ``qc=False`` takes every non-NULL reading as valid and
    writes ``rejected`` = 0 (the plain statistics). Rows sorted by (turbine_id, variable,
    timestamp).
    """
    days = whole_days(start, end)
    names = sorted(dict.fromkeys(turbines))
    columns = sorted(variables)
    needed = source_columns(variables[name] for name in columns)
    missing = [
        name for name in ("turbine_id", "timestamp", *needed) if name not in raw.schema.names
    ]
    if missing:
        raise InvalidInputError(
            f"the raw readings have no column {', '.join(missing)}",
            hint=f"columns present: {', '.join(raw.schema.names)}",
        )
    start_us = to_utc_us(start)
    grid = _Grid(len(names), len(days))
    turbine, micros, rows = _rows(raw, names, start_us, start_us + len(days) * DAY_US)
    offset = micros - start_us
    segment = turbine * len(days) + offset // DAY_US  # (turbine, day), increasing along the rows
    window = turbine * grid.windows_per_turbine + offset // WINDOW_US
    on_grid = micros % MINUTE_US == 0

    judged: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # a source column's values and status

    def readings(variable: Variable) -> tuple[np.ndarray, np.ndarray]:
        if variable.name not in judged:
            values = arrays.to_numpy(raw.column(variable.name), np.float64)[rows]
            if qc:
                status = quality.classify(segment, micros, values, variable)
            else:
                status = quality.classify_plain(values)
            judged[variable.name] = values, status
        return judged[variable.name]

    stats: dict[str, list[np.ndarray]] = {name: [] for name in ("mean", "min", "max", "std")}
    counts, rejected, reasons = [], [], []
    for name in columns:
        variable = variables[name]
        if variable.sources:
            values, status = _derived([readings(v) for v in variable.sources])
        else:
            values, status = readings(variable)
        valid = quality.is_valid(status)
        if variable.circular:
            origin = variable.physical_min or 0.0
            count, mean, low, high, std = circular.window_stats(
                window[valid], values[valid], grid.windows, origin
            )
        else:
            count, mean, low, high, std = _window_stats(window[valid], values[valid], grid.windows)
        for key, column in zip(("mean", "min", "max", "std"), (mean, low, high, std), strict=True):
            stats[key].append(column)
        counts.append(count)
        rejected.append(np.bincount(window[quality.is_rejected(status)], minlength=grid.windows))
        per_day = quality.reason_counts(status, segment, grid.segments)
        present = np.bincount(segment[on_grid & ~np.isnan(values)], minlength=grid.segments)
        per_day[:, quality.MISSING] = MINUTES_PER_DAY - present
        if not qc:
            per_day[:, quality.OFF_GRID] = 0
        reasons.append(per_day)
    return Transformed(
        stats=_stats_table(names, columns, start_us, grid, stats, counts, rejected),
        quality=_quality_table(names, columns, days, grid, reasons),
    )


def _derived(sources: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``yaw_error``'s readings and status from its two sources' (values, status).

    The value is the wrapped difference first - second; its status is the first rule that applies
    to either reading (the lower status code, VALID being 0), so it is valid exactly when both are.
    """
    (first, first_status), (second, second_status) = sources
    with np.errstate(invalid="ignore"):
        values = circular.difference(first, second)
    both_invalid = np.minimum(first_status, second_status)
    status = np.where(
        first_status == quality.VALID,
        second_status,
        np.where(second_status == quality.VALID, first_status, both_invalid),
    )
    return values, status.astype(quality.STATUS_DTYPE, copy=False)


@dataclass(frozen=True)
class _Grid:
    turbines: int
    days: int

    @property
    def windows_per_turbine(self) -> int:
        return self.days * WINDOWS_PER_DAY

    @property
    def windows(self) -> int:
        return self.turbines * self.windows_per_turbine

    @property
    def segments(self) -> int:
        return self.turbines * self.days


def _rows(
    raw: pa.Table, names: list[str], start_us: int, end_us: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turbine index (into ``names``), timestamp and source row of each reading kept, in
    (turbine, timestamp) order; readings outside the range or of other turbines are dropped."""
    turbine = arrays.codes(raw.column("turbine_id"), names)
    stamps = raw.column("timestamp")
    if stamps.type != UTC_US:
        stamps = stamps.cast(UTC_US)  # another unit, or naive (taken as UTC)
    micros = arrays.to_numpy(stamps, np.int64)
    keep = np.flatnonzero((turbine >= 0) & (micros >= start_us) & (micros < end_us))
    turbine, micros = turbine[keep], micros[keep]
    key = turbine * (end_us - start_us) + (micros - start_us)
    if len(key) > 1 and not np.all(key[1:] >= key[:-1]):
        order = np.argsort(key, kind="stable")
        keep, turbine, micros = keep[order], turbine[order], micros[order]
    return turbine, micros, keep


def _window_stats(window: np.ndarray, x: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """count, mean, min, max, std per window of the valid readings ``x`` (``window`` sorted)."""
    count = np.bincount(window, minlength=n).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(window, weights=x, minlength=n) / count
        low, high = np.full(n, np.nan), np.full(n, np.nan)
        if len(window):
            starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
            low[window[starts]] = np.minimum.reduceat(x, starts)
            high[window[starts]] = np.maximum.reduceat(x, starts)
        # A sum's rounding can put the mean of equal readings one ulp outside them.
        mean = np.clip(mean, low, high)
        deviation = x - mean[window]  # two passes: no cancellation for large, steady values
        squares = np.bincount(window, weights=deviation * deviation, minlength=n)
        std = np.where(count >= 2, np.sqrt(squares / (count - 1)), np.nan)
    return count, mean, low, high, std


def _interleave(per_variable: list[np.ndarray], grid: _Grid) -> np.ndarray:
    """Arrays indexed (turbine, window) per variable → one array in (turbine, variable, window)."""
    shaped = [a.reshape(grid.turbines, grid.windows_per_turbine) for a in per_variable]
    return np.stack(shaped, axis=1).reshape(-1)


def _stats_table(
    names: list[str],
    columns: list[str],
    start_us: int,
    grid: _Grid,
    stats: dict[str, list[np.ndarray]],
    counts: list[np.ndarray],
    rejected: list[np.ndarray],
) -> pa.Table:
    width = len(columns)
    per_turbine = width * grid.windows_per_turbine
    turbine = np.repeat(np.arange(grid.turbines), per_turbine)
    variable = np.tile(np.repeat(np.arange(width), grid.windows_per_turbine), grid.turbines)
    window = np.arange(grid.windows_per_turbine, dtype=np.int64) * WINDOW_US + start_us
    count = _interleave(counts, grid) if width else np.empty(0, np.int64)
    data = {
        "turbine_id": arrays.strings(names, turbine).dictionary_decode(),
        "timestamp": arrays.timestamps(np.tile(window, grid.turbines * width)),
        "variable": arrays.strings(columns, variable).dictionary_decode(),
    }
    for key in ("mean", "min", "max", "std"):
        values = _interleave(stats[key], grid) if width else np.empty(0)
        data[key] = arrays.from_numpy(values, ~np.isnan(values))
    data["count"] = arrays.from_numpy(count)
    data["rejected"] = arrays.from_numpy(
        _interleave(rejected, grid).astype(np.int64) if width else np.empty(0, np.int64)
    )
    return pa.Table.from_pydict(data, schema=STATS_SCHEMA)


def _quality_table(
    names: list[str], columns: list[str], days: list[date], grid: _Grid, reasons: list[np.ndarray]
) -> pa.Table:
    width = len(columns)
    # reasons[v] is indexed (turbine * days + day, status); rows go (turbine, day, variable).
    turbine = np.repeat(np.arange(grid.turbines), grid.days * width)
    day = np.tile(np.repeat(np.arange(grid.days), width), grid.turbines)
    variable = np.tile(np.arange(width), grid.segments)
    first_day = (days[0] - _EPOCH_DAY).days if days else 0
    data = {
        "turbine_id": arrays.strings(names, turbine).dictionary_decode(),
        "day": arrays.from_numpy((day + first_day).astype(np.int32)).view(pa.date32()),
        "variable": arrays.strings(columns, variable).dictionary_decode(),
    }
    stacked = np.stack(reasons, axis=1).reshape(-1, len(quality.REASONS)) if width else None
    for name in QUALITY_COUNTS:
        if name == "expected":
            values = np.full(len(turbine), MINUTES_PER_DAY, dtype=np.int64)
        else:
            column = stacked[:, quality.REASONS.index(name)] if width else np.empty(0)
            values = column.astype(np.int64)
        data[name] = arrays.from_numpy(values)
    return pa.Table.from_pydict(data, schema=QUALITY_SCHEMA)
