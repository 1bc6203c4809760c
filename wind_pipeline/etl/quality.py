"""Data quality (SPEC §11): the status of every reading, decided before any statistic is taken.

Each reading of a variable gets the first status that applies: missing, off grid, out of range,
frozen, spike, valid. Statistics use the valid readings only; ``rejected`` counts the off-grid,
out-of-range, frozen and spike readings. Neighbours (the frozen run, the spike's minutes either
side) never cross a segment, one (turbine, UTC day): a day is judged on its own, so a partition's
result never depends on the partitions around it.

What §11 leaves open, decided here (and in the SQL reference the tests compare against):

- A NULL at any timestamp is *missing* (rule 1 comes first), even off the minute grid.
- *Off grid* is a non-NULL reading whose timestamp is not a whole UTC minute (00:00:30), or a
  second non-NULL reading at a minute that already has one in the same segment (a duplicate: the
  source's key forbids it, but the rule does not depend on that; the first in row order stays).
  Off-grid readings are invisible to rules 4-5: they neither break nor join a frozen run, and
  they are never a spike's neighbour.
- Rules 4-5 look only at *in-range* readings (on grid, non-NULL, within the bounds). An
  out-of-range reading, a NULL or an absent minute therefore breaks a frozen run, and a spike's
  neighbours must be exactly the previous and the next minute of the same segment, present and in
  range.
- A frozen run is ≥ 10 consecutive minutes with exactly equal values (IEEE ``==``, so -0.0 equals
  0.0). A run at ``physical_min`` or ``physical_max`` is not frozen (idling at 0 kW, clipping at
  rated power); its readings go on to the spike rule like any other.
- A frozen reading is a valid neighbour for the spike rule (it is present and in range); a frozen
  reading is never itself a spike. A reading at the first or last minute of a day has one
  neighbour at most, so it is never a spike; nor is a step that does not come back.
- "More than ``max_step``" is strict: a difference of exactly ``max_step`` is not a spike.
  ``max_step`` None means no spike rule; a bound None means no limit on that side.

Everything is vectorised (a year of a fleet is tens of millions of readings): no Python loop runs
per reading.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

VALID, MISSING, OFF_GRID, OUT_OF_RANGE, FROZEN, SPIKE = range(6)
# Indexed by status code: REASONS[OFF_GRID] == "off_grid" (the quality table's column names).
REASONS = ("valid", "missing", "off_grid", "out_of_range", "frozen", "spike")
REJECTED = (OFF_GRID, OUT_OF_RANGE, FROZEN, SPIKE)
FROZEN_RUN = 10  # readings at consecutive minutes, all equal, that make a run frozen

MINUTE_US = 60_000_000
_DAY_US = 86_400_000_000

STATUS_DTYPE = np.int8
_IS_REJECTED = np.zeros(len(REASONS), dtype=bool)
_IS_REJECTED[list(REJECTED)] = True


class Limits(Protocol):
    """What QC needs from a variable's description in ``GET /variables``."""

    @property
    def physical_min(self) -> float | None: ...
    @property
    def physical_max(self) -> float | None: ...
    @property
    def max_step(self) -> float | None: ...


def day_segments(turbine_codes: np.ndarray, timestamps_us: np.ndarray) -> np.ndarray:
    """Segment ids for ``classify``: one per (turbine, UTC day), increasing with both.

    ``turbine_codes`` are small non-negative integers (e.g. an Arrow dictionary's indices).
    """
    days = np.floor_divide(np.asarray(timestamps_us, dtype=np.int64), _DAY_US)
    return np.asarray(turbine_codes, dtype=np.int64) * (1 << 32) + days


def classify(
    segments: np.ndarray,
    timestamps_us: np.ndarray,
    values: np.ndarray,
    limits: Limits,
) -> np.ndarray:
    """The §11 status (int8) of every reading; rows sorted by (segment, timestamp), NaN = NULL."""
    segments = np.asarray(segments, dtype=np.int64)
    timestamps_us = np.asarray(timestamps_us, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    status = np.zeros(len(values), dtype=STATUS_DTYPE)

    missing = np.isnan(values)
    off_grid = (timestamps_us % MINUTE_US != 0) & ~missing
    on_grid = np.flatnonzero(~(missing | off_grid))
    if len(on_grid) > 1:  # a second non-NULL reading at the same minute is a duplicate
        seg, ts = segments[on_grid], timestamps_us[on_grid]
        repeated = (seg[1:] == seg[:-1]) & (ts[1:] == ts[:-1])
        off_grid[on_grid[1:][repeated]] = True
    out_of_range = np.zeros(len(values), dtype=bool)
    low, high = limits.physical_min, limits.physical_max
    with np.errstate(invalid="ignore"):
        if low is not None:
            out_of_range |= values < low
        if high is not None:
            out_of_range |= values > high
    out_of_range &= ~(missing | off_grid)
    status[missing] = MISSING
    status[off_grid] = OFF_GRID
    status[out_of_range] = OUT_OF_RANGE

    # Rules 4-5 see only the in-range readings; in that subsequence a neighbour is the next
    # element when it is the same segment and exactly one minute on.
    kept = np.flatnonzero(~(missing | off_grid | out_of_range))
    if len(kept) == 0:
        return status
    seg, ts, v = segments[kept], timestamps_us[kept], values[kept]
    adjacent = (seg[1:] == seg[:-1]) & (ts[1:] - ts[:-1] == MINUTE_US)  # element i and i+1
    step = v[1:] - v[:-1]
    links = adjacent & (step == 0.0)

    # Runs of equal values at consecutive minutes: boundaries where the link breaks.
    starts = np.flatnonzero(np.concatenate(([True], ~links)))
    lengths = np.diff(np.append(starts, len(kept)))
    long_run = np.repeat(lengths >= FROZEN_RUN, lengths)
    at_bound = np.zeros(len(kept), dtype=bool)
    if low is not None:
        at_bound |= v == low
    if high is not None:
        at_bound |= v == high
    frozen = long_run & ~at_bound
    status[kept[frozen]] = FROZEN

    max_step = limits.max_step
    if max_step is not None and len(kept) >= 3:
        # For element i (1 ≤ i ≤ n-2): rise = v[i] - v[i-1], fall = v[i+1] - v[i].
        rise, fall = step[:-1], step[1:]
        both = adjacent[:-1] & adjacent[1:]
        up = (rise > max_step) & (-fall > max_step)
        down = (-rise > max_step) & (fall > max_step)
        spike = np.zeros(len(kept), dtype=bool)
        spike[1:-1] = both & (up | down)
        spike &= ~frozen
        status[kept[spike]] = SPIKE
    return status


def classify_plain(values: np.ndarray) -> np.ndarray:
    """``--qc off``: every non-NULL reading is valid, a NULL is missing (nothing is rejected)."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(values), MISSING, VALID).astype(STATUS_DTYPE)


def is_valid(status: np.ndarray) -> np.ndarray:
    """Readings the statistics use."""
    return status == VALID


def is_rejected(status: np.ndarray) -> np.ndarray:
    """Readings counted in ``rejected``: present, but not to be trusted."""
    return _IS_REJECTED[status]


def reason_counts(status: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Readings per (group, status): an int64 array (n_groups, len(REASONS)), columns in REASONS.

    ``groups`` are integers in [0, n_groups), e.g. a (turbine, day) or a window index. Only rows
    that exist are counted: a minute with no row at all is missing too, which a caller adds as
    ``expected - (valid + out_of_range + frozen + spike)`` for a day (off-grid readings are
    extra rows, not minutes).
    """
    flat = np.asarray(groups, dtype=np.int64) * len(REASONS) + status
    counts = np.bincount(flat, minlength=n_groups * len(REASONS))
    return counts.reshape(n_groups, len(REASONS))
