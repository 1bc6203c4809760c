"""Ten-minute statistics of one-minute readings, vectorised with numpy (a year in one call).

The arithmetic runs on plain arrays (``Readings`` in, ``StatsColumns`` out) so that ``wind-etl``
never imports pandas; ``ten_minute_stats`` is the pandas face of the same computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from wind_pipeline.etl.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

WINDOW_US = 600_000_000  # 10 minutes in microseconds
DAY_US = 86_400_000_000
STAT_COLUMNS = ("count", "mean", "min", "max", "std")


@dataclass(frozen=True)
class Readings:
    """One-minute readings: UTC microseconds since the epoch, and a float64 array per variable."""

    timestamps_us: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.timestamps_us)


@dataclass(frozen=True)
class StatsColumns:
    """The tidy statistics as parallel arrays: row i is (window, variables[var_index[i]])."""

    timestamps_us: np.ndarray
    variables: tuple[str, ...]
    var_index: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray
    std: np.ndarray

    def __len__(self) -> int:
        return len(self.timestamps_us)


def to_utc_us(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def window_grid(start: datetime, end: datetime) -> np.ndarray:
    """Starts of the clock-aligned windows in ``[start, end)``; both ends must be on the grid."""
    start_us, end_us = to_utc_us(start), to_utc_us(end)
    if start_us % WINDOW_US or end_us % WINDOW_US:
        raise InvalidInputError(
            f"the range {start.isoformat()} to {end.isoformat()} is not on the 10-minute grid",
            hint="start and end must fall on a multiple of 10 minutes in UTC, e.g. midnight",
        )
    if end_us < start_us:
        raise InvalidInputError(f"end {end.isoformat()} is before start {start.isoformat()}")
    return np.arange(start_us, end_us, WINDOW_US, dtype=np.int64)


def compute_stats(readings: Readings, start: datetime, end: datetime) -> StatsColumns:
    """Statistics for every window in ``[start, end)`` and every variable, sorted by both."""
    grid = window_grid(start, end)
    n = len(grid)
    ts = np.asarray(readings.timestamps_us, dtype=np.int64)
    order = None if np.all(ts[1:] >= ts[:-1]) else np.argsort(ts, kind="stable")
    if order is not None:
        ts = ts[order]
    lo, hi = np.searchsorted(ts, [to_utc_us(start), to_utc_us(end)])
    window = (ts[lo:hi] - to_utc_us(start)) // WINDOW_US
    variables = tuple(sorted(readings.values))
    per_variable = []
    for name in variables:
        values = np.asarray(readings.values[name], dtype=np.float64)
        if order is not None:
            values = values[order]
        per_variable.append(_window_stats(window, values[lo:hi], n))
    stacked = {
        stat: np.column_stack([v[i] for v in per_variable]).ravel() if variables else _empty(stat)
        for i, stat in enumerate(STAT_COLUMNS)
    }
    width = len(variables)
    return StatsColumns(
        timestamps_us=np.repeat(grid, width),
        variables=variables,
        var_index=np.tile(np.arange(width, dtype=np.int64), n),
        **stacked,
    )


def _empty(stat: str) -> np.ndarray:
    return np.empty(0, dtype=np.int64 if stat == "count" else np.float64)


def _window_stats(window: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """count, mean, min, max, std per window; ``window`` is sorted, NaN readings are skipped."""
    present = ~np.isnan(values)
    idx, x = window[present], values[present]
    count = np.bincount(idx, minlength=n).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(idx, weights=x, minlength=n) / count
        low, high = np.full(n, np.nan), np.full(n, np.nan)
        if len(idx):
            starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
            low[idx[starts]] = np.minimum.reduceat(x, starts)
            high[idx[starts]] = np.maximum.reduceat(x, starts)
        # A sum's rounding can put the mean of equal readings one ulp outside them.
        mean = np.clip(mean, low, high)
        deviation = x - mean[idx]  # two passes: no cancellation for large, steady values
        squares = np.bincount(idx, weights=deviation * deviation, minlength=n)
        std = np.where(count >= 2, np.sqrt(squares / (count - 1)), np.nan)
    return count, mean, low, high, std


def readings_from_frame(raw: pd.DataFrame, variables: Sequence[str]) -> Readings:
    """The arrays behind a raw frame (``timestamp`` + one column per variable)."""
    missing = [name for name in ("timestamp", *variables) if name not in raw.columns]
    if missing:
        raise InvalidInputError(
            f"the raw readings have no column {', '.join(missing)}",
            hint=f"columns present: {', '.join(map(str, raw.columns))}",
        )
    import pandas as pd

    # Naive timestamps are UTC; an empty frame's column may be untyped (object).
    stamps = pd.to_datetime(raw["timestamp"], utc=True)
    micros = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").astype(np.int64)
    values = {name: raw[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in variables}
    return Readings(micros, values)


def stats_to_frame(stats: StatsColumns) -> pd.DataFrame:
    """The tidy frame: timestamp, variable, count, mean, min, max, std."""
    import pandas as pd

    stamps = pd.Series(stats.timestamps_us.astype("datetime64[us]")).dt.tz_localize("UTC")
    names = np.array(stats.variables, dtype=object)[stats.var_index]
    frame = pd.DataFrame({"timestamp": stamps, "variable": pd.Series(names, dtype=str)})
    for stat in STAT_COLUMNS:
        frame[stat] = getattr(stats, stat)
    return frame


def stats_from_frame(frame: pd.DataFrame) -> StatsColumns:
    """The arrays behind a tidy stats frame (the inverse of ``stats_to_frame``)."""
    missing = [c for c in ("timestamp", "variable", *STAT_COLUMNS) if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"the statistics frame has no column {', '.join(missing)}")
    micros = readings_from_frame(frame[["timestamp"]], ()).timestamps_us
    variables, var_index = np.unique(frame["variable"].to_numpy(dtype=object), return_inverse=True)
    columns = {
        stat: frame[stat].to_numpy(dtype=np.float64, na_value=np.nan) for stat in STAT_COLUMNS
    }
    columns["count"] = np.nan_to_num(columns["count"]).astype(np.int64)
    return StatsColumns(
        timestamps_us=micros,
        variables=tuple(str(v) for v in variables),
        var_index=var_index.astype(np.int64),
        **columns,
    )


def ten_minute_stats(
    raw: pd.DataFrame, start: datetime, end: datetime, variables: Sequence[str]
) -> pd.DataFrame:
    """One row per clock-aligned 10-minute window in ``[start, end)`` and variable, even empty.

    Columns: ``timestamp`` (window start, UTC), ``variable``, ``count`` (int64), ``mean``,
    ``min``, ``max``, ``std`` (float64, sample std with ddof=1; NaN where undefined).
    """
    return stats_to_frame(compute_stats(readings_from_frame(raw, variables), start, end))
