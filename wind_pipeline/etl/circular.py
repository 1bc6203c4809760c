"""Statistics of angles (README "Directions"): the mean of 350° and 10° is 0°, not 180°.

A direction's ten-minute mean is the direction of the mean unit vector, its spread Yamartino's
one-pass estimate of the circular standard deviation (what data loggers and the wind industry's
tools write), and its min/max are read on the arc around the mean. Everything is vectorised over
windows like the linear statistics in ``transform``; nothing here knows Arrow but the two day
figures at the end, which read a STATS table.

Choices the rules leave open, made here:

- A window with readings but no direction (resultant length ``R < 1e-9``, e.g. two opposite
  readings) has ``count`` and ``std`` but no mean, and no min/max either: they are taken around
  the mean, and "around nothing" has no answer.
- ``1 - R²`` is computed around the mean direction, as ``h(2 - h) - S'²`` with
  ``h = mean(1 - cos(θ - mean)) = mean(2 sin²((θ - mean)/2))`` and ``S' = mean(sin(θ - mean))``.
  It is the same number as ``1 - (S² + C²)`` (``R`` does not change when every angle turns by the
  same amount) without the cancellation: ten equal readings give ``std`` 0 to 1e-13° instead of
  the 1e-6° noise of the direct form.
- A variable's values wrap into ``[origin, origin + 360)``: origin 0 for a direction, -180 for
  the yaw error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wind_pipeline.etl import arrays
from wind_pipeline.etl.calendar import DAY_US

if TYPE_CHECKING:
    from wind_pipeline.etl.catalogue import Variable

PERIOD = 360.0
NO_DIRECTION = 1e-9  # a resultant length below this has no mean direction
WIDE_SPREAD = 180.0  # a window whose readings spread wider than this around its mean
_YAMARTINO = 2.0 / np.sqrt(3.0) - 1.0


def wrap(degrees: np.ndarray, origin: float = 0.0) -> np.ndarray:
    """Angles into ``[origin, origin + 360)`` (an exact 360 above the origin becomes the origin).

    ``x - 360·floor(x/360)`` gives what ``np.mod`` gives (the quotient's floor is exact for
    |x| < 2^44) at a third of its cost: ``np.mod`` is a C ``fmod`` per element.
    """
    wrapped = np.array(degrees, dtype=np.float64, ndmin=1)  # a copy, then wrapped in place
    if origin:
        wrapped -= origin
    turns = np.divide(wrapped, PERIOD)
    np.floor(turns, out=turns)
    turns *= PERIOD
    wrapped -= turns
    wrapped[wrapped < 0.0] += PERIOD  # a quotient rounded up to the next integer (x ≈ -5e-324)
    wrapped[wrapped >= PERIOD] = 0.0  # -1e-20 + 360 rounds up to 360
    if origin:
        wrapped += origin
    return wrapped


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``d(a, b) = ((a - b + 180) mod 360) - 180``, in ``[-180, 180)``: the yaw error's formula."""
    return wrap(np.asarray(a, dtype=np.float64) - b, -PERIOD / 2)


def window_stats(
    window: np.ndarray, x: np.ndarray, n: int, origin: float = 0.0
) -> tuple[np.ndarray, ...]:
    """count, mean, min, max, std per window of the valid angles ``x`` (degrees; ``window`` sorted).

    Undefined statistics are NaN: mean/min/max without readings or without a direction, std
    below two readings. The shape of ``transform``'s linear ``_window_stats``.
    """
    count = np.bincount(window, minlength=n).astype(np.int64)
    mean, low, high, std = (np.full(n, np.nan) for _ in range(4))
    if len(window) == 0:
        return count, mean, low, high, std
    theta = np.radians(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.bincount(window, weights=np.sin(theta), minlength=n) / count
        c = np.bincount(window, weights=np.cos(theta), minlength=n) / count
    present = count > 0
    centre = np.where(present, np.degrees(np.arctan2(s, c)), 0.0)
    centre = wrap(centre, origin)
    # Each reading on the arc (centre - 180, centre + 180]: its offset from the centre.
    offset = wrap(np.subtract(x, centre[window], out=theta), -PERIOD / 2)  # theta is done with
    offset[offset == -PERIOD / 2] = PERIOD / 2
    starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
    first, last = np.full(n, np.nan), np.full(n, np.nan)
    first[window[starts]] = np.minimum.reduceat(offset, starts)
    last[window[starts]] = np.maximum.reduceat(offset, starts)

    # sin²(offset/2), in place in one buffer (a reading's temporaries cost more than its trig)
    half = np.radians(offset)
    half /= 2
    np.sin(half, out=half)
    np.square(half, out=half)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = 2 * np.bincount(window, weights=half, minlength=n) / count
        turned = s * np.cos(np.radians(centre)) - c * np.sin(np.radians(centre))
        epsilon = np.sqrt(np.clip(h * (2 - h) - turned * turned, 0.0, 1.0))
        sigma = np.degrees(np.arcsin(epsilon)) * (1 + _YAMARTINO * epsilon**3)
    std = np.where(count >= 2, sigma, np.nan)
    direction = present & (np.hypot(s, c) >= NO_DIRECTION)
    mean = np.where(direction, centre, np.nan)
    low = np.where(direction, wrap(np.nan_to_num(centre + first), origin), np.nan)
    high = np.where(direction, wrap(np.nan_to_num(centre + last), origin), np.nan)
    return count, mean, low, high, std


def spread(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Max minus min on the arc around the mean, from the wrapped min/max (always < 360)."""
    return np.mod(np.asarray(high, dtype=np.float64) - low, PERIOD)


def wide_window_share(stats: pa.Table, variables: Iterable[str]) -> pa.Table:
    """Per (turbine, day, variable): windows with readings, how many are wide, and the share.

    A window is wide when its readings spread more than 180° around the mean, or when they have
    no mean at all (count ≥ 1 but R < 1e-9): either way its mean says little. The input is the
    transform's STATS table; ``variables`` the circular ones to judge. Rows sorted.
    """
    wanted = pc.is_in(stats.column("variable"), value_set=pa.array(list(variables), pa.string()))
    rows = stats.filter(wanted)
    has = arrays.to_numpy(rows.column("count"), np.int64) >= 1
    low = arrays.to_numpy(rows.column("min"), np.float64)
    high = arrays.to_numpy(rows.column("max"), np.float64)
    no_mean = np.isnan(arrays.to_numpy(rows.column("mean"), np.float64))
    with np.errstate(invalid="ignore"):
        wide = has & (no_mean | (spread(low, high) > WIDE_SPREAD))
    table = pa.table(
        {
            "turbine_id": rows.column("turbine_id"),
            "day": _days(rows),
            "variable": rows.column("variable"),
            "windows": arrays.from_numpy(has.astype(np.int64)),
            "wide": arrays.from_numpy(wide.astype(np.int64)),
        }
    )
    keys = ["turbine_id", "day", "variable"]
    grouped = table.group_by(keys).aggregate([("windows", "sum"), ("wide", "sum")])
    windows, wide_sum = grouped.column("windows_sum"), grouped.column("wide_sum")
    share = pc.if_else(
        pc.equal(windows, 0), 0.0, pc.divide(pc.cast(wide_sum, pa.float64()), windows)
    )
    return pa.table(
        {
            **{key: grouped.column(key) for key in keys},
            "windows": windows,
            "wide": wide_sum,
            "share": share,
        }
    ).sort_by([(key, "ascending") for key in keys])


def daily_mean(stats: pa.Table, variable: str = "yaw_error", origin: float = -180.0) -> pa.Table:
    """Per (turbine, day): the circular mean of the day's ten-minute means of ``variable``.

    Each window with a mean weighs the same, so the figure is what an analyst gets from the
    target's ``<turbine>.<variable>_mean`` signals. ``mean`` is NULL for a day without any
    window mean, or whose window means cancel out. Rows sorted by (turbine_id, day).
    """
    rows = stats.filter(pc.and_(pc.equal(stats.column("variable"), variable),
                                pc.is_valid(stats.column("mean"))))  # fmt: skip
    theta = np.radians(arrays.to_numpy(rows.column("mean"), np.float64))
    table = pa.table(
        {
            "turbine_id": rows.column("turbine_id"),
            "day": _days(rows),
            "sin": arrays.from_numpy(np.sin(theta)),
            "cos": arrays.from_numpy(np.cos(theta)),
        }
    )
    grouped = table.group_by(["turbine_id", "day"]).aggregate(
        [("sin", "mean"), ("cos", "mean"), ("sin", "count")]
    )
    s = arrays.to_numpy(grouped.column("sin_mean"), np.float64)
    c = arrays.to_numpy(grouped.column("cos_mean"), np.float64)
    mean = wrap(np.degrees(np.arctan2(s, c)), origin)
    defined = np.hypot(s, c) >= NO_DIRECTION
    return pa.table(
        {
            "turbine_id": grouped.column("turbine_id"),
            "day": grouped.column("day"),
            "windows": grouped.column("sin_count"),
            "mean": arrays.from_numpy(mean, defined),
        }
    ).sort_by([("turbine_id", "ascending"), ("day", "ascending")])


def _days(stats: pa.Table) -> pa.Array:
    """The UTC day (date32) of each window start."""
    micros = arrays.to_numpy(stats.column("timestamp"), np.int64)
    return arrays.from_numpy(np.floor_divide(micros, DAY_US).astype(np.int32)).view(pa.date32())


def origins(variables: Mapping[str, Variable]) -> dict[str, float]:
    """The circular variables of ``variables`` with the origin their values wrap to: a
    direction's range is ``[0, 360)``, the yaw error's ``[-180, 180)`` (its ``physical_min``)."""
    return {name: v.physical_min or 0.0 for name, v in variables.items() if v.circular}


def means_out_of_range(stats: pa.Table, ranges: Mapping[str, float]) -> dict[str, int]:
    """Per circular variable (name → origin, as ``origins`` gives): windows of the STATS table
    whose mean lies outside ``[origin, origin + 360)``. A window without a mean is not counted:
    it has no direction to be out of range."""
    found = {}
    for name, origin in ranges.items():
        rows = stats.filter(pc.equal(stats.column("variable"), name))
        mean = arrays.to_numpy(rows.column("mean"), np.float64)
        with np.errstate(invalid="ignore"):
            outside = ~np.isnan(mean) & ((mean < origin) | (mean >= origin + PERIOD))
        found[name] = int(outside.sum())
    return found


def wide_turbines(stats: pa.Table, variables: Iterable[str], max_share: float) -> list[dict]:
    """The rows of ``wide_window_share`` (turbine, day, variable) whose share of wide windows is
    above ``max_share`` (a fraction): the days and turbines whose circular means say little.
    None without a circular variable, and then no Arrow table is built: pyarrow's constructors
    and group-by import pandas, 0.3 s of every run that loads only linear variables."""
    variables = list(variables)
    if not variables:
        return []
    rows = wide_window_share(stats, variables).to_pylist()
    return [row for row in rows if row["share"] > max_share]
