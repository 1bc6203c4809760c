"""Counting what a day holds, for the checks and the metadata: plain numpy, no Dagster.

The Dagster layer (``wind_pipeline.defs.checks``) turns these counts into check results; the
rules they count by are the core's own (``quality`` classifies the readings, ``signal_rows``
decides which values exist), so a check can never disagree with the load about them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import arrays, quality
from wind_pipeline.etl.calendar import (
    DAY_US,
    READINGS_PER_WINDOW,
    WINDOW_US,
    WINDOWS_PER_DAY,
    day_start,
    to_utc_us,
)
from wind_pipeline.etl.catalogue import Variable
from wind_pipeline.etl.signal_rows import melt
from wind_pipeline.etl.signals import MIN_COUNT

REL_TOLERANCE = 1e-9  # float noise allowed when comparing statistics and sums


def _column(table: pa.Table, name: str, dtype: type[np.generic] = np.float64) -> np.ndarray:
    return arrays.to_numpy(table.column(name), dtype)


@dataclass(frozen=True)
class RawCounts:
    """One day of RAW readings counted per turbine: rows, NULLs, and readings per QC status."""

    turbines: tuple[str, ...]
    rows_per_turbine: np.ndarray  # int64 per turbine
    nulls: dict[str, np.ndarray]  # variable -> NULL readings per turbine
    reasons: dict[str, np.ndarray]  # variable -> (turbine, quality.REASONS) counts
    limits: dict[str, Variable]


def raw_counts(
    table: pa.Table, turbines: Sequence[str], limits: Mapping[str, Variable]
) -> RawCounts:
    """Classify each reading with the core's QC (the one home of the rules) and count."""
    turbines = tuple(turbines)
    codes = arrays.codes(table.column("turbine_id"), turbines)
    stamps = _column(table, "timestamp", np.int64)
    segments = quality.day_segments(np.maximum(codes, 0), stamps)
    known = codes >= 0
    rows = np.bincount(codes[known], minlength=len(turbines))
    nulls, reasons = {}, {}
    for name, limit in limits.items():
        values = _column(table, name)
        status = quality.classify(segments, stamps, values, limit)
        nulls[name] = np.bincount(codes[known & np.isnan(values)], minlength=len(turbines))
        reasons[name] = quality.reason_counts(status[known], codes[known], len(turbines))
    return RawCounts(turbines, rows, nulls, reasons, dict(limits))


@dataclass(frozen=True)
class WindowCounts:
    """How a day's STATS table departs from one row per window, turbine and variable."""

    missing: dict[str, int]  # variable -> windows without a row
    duplicated: int
    unexpected: int  # rows outside the day's turbines, variables or ten-minute grid


def window_counts(
    day: date, stats: pa.Table, turbines: Sequence[str], variables: Sequence[str]
) -> WindowCounts:
    t = arrays.codes(stats.column("turbine_id"), turbines)
    v = arrays.codes(stats.column("variable"), variables)
    offset = _column(stats, "timestamp", np.int64) - to_utc_us(day_start(day))
    inside = (t >= 0) & (v >= 0) & (offset >= 0) & (offset < DAY_US) & (offset % WINDOW_US == 0)
    slot = (t[inside] * len(variables) + v[inside]) * WINDOWS_PER_DAY + offset[inside] // WINDOW_US
    seen = np.bincount(slot, minlength=len(turbines) * len(variables) * WINDOWS_PER_DAY)
    seen = seen.reshape(len(turbines), len(variables), WINDOWS_PER_DAY)
    return WindowCounts(
        missing={var: int((seen[:, i] == 0).sum()) for i, var in enumerate(variables)},
        duplicated=int(np.maximum(seen - 1, 0).sum()),
        unexpected=int((~inside).sum()),
    )


def consistency_violations(stats: pa.Table, *, qc: bool) -> dict[str, int]:
    """Windows breaking each rule of the arithmetic, for the quality-control mode in use.

    With QC on a window counts at most its ten on-grid minutes and rejects the rest; with QC off
    every non-NULL reading counts (off-grid ones too, so more than ten) and none is rejected.
    """
    count = _column(stats, "count")
    rejected = _column(stats, "rejected")
    mean, low, high, std = (_column(stats, name) for name in ("mean", "min", "max", "std"))
    with np.errstate(invalid="ignore"):
        slack = REL_TOLERANCE * np.maximum(1.0, np.fmax(np.abs(low), np.abs(high)))
        bad_count = (count < 0) | np.isnan(count)
        rules = {
            "min_above_mean": low > mean + slack,
            "mean_above_max": mean > high + slack,
            "negative_std": std < 0,
        }
        if qc:
            rules["count_out_of_0_10"] = bad_count | (count > READINGS_PER_WINDOW)
            rules["negative_rejected"] = (rejected < 0) | np.isnan(rejected)
        else:
            rules["negative_count"] = bad_count
            rules["rejected_without_qc"] = (rejected != 0) | np.isnan(rejected)
        rules["nulls_not_matching_count"] = np.logical_or.reduce(
            [
                np.isnan(values) != (count < MIN_COUNT[name])
                for name, values in (("mean", mean), ("min", low), ("max", high), ("std", std))
            ]
        )
    return {rule: int(mask.sum()) for rule, mask in rules.items()}


@dataclass(frozen=True)
class QualityCounts:
    """One day's QC counts (the transform's QUALITY rows) summed the ways metadata needs."""

    turbines: tuple[str, ...]
    variables: tuple[str, ...]
    counts: np.ndarray  # (turbine, variable, REASONS) readings per status; missing incl. gaps

    @property
    def rejected(self) -> np.ndarray:  # (turbine, variable)
        return self.counts[:, :, list(quality.REJECTED)].sum(axis=2)

    @property
    def present(self) -> np.ndarray:  # non-NULL readings that exist: valid + rejected
        return self.counts[:, :, quality.VALID] + self.rejected

    def by_reason(self) -> dict[str, int]:
        """Rejected readings per reason, in ``quality.REASONS`` order."""
        return {
            quality.REASONS[status]: int(self.counts[:, :, status].sum())
            for status in quality.REJECTED
        }


def quality_counts(
    table: pa.Table, turbines: Sequence[str], variables: Sequence[str]
) -> QualityCounts:
    turbines, variables = tuple(turbines), tuple(variables)
    t = arrays.codes(table.column("turbine_id"), turbines)
    v = arrays.codes(table.column("variable"), variables)
    counts = np.zeros((len(turbines), len(variables), len(quality.REASONS)), dtype=np.int64)
    keep = (t >= 0) & (v >= 0)
    for status, reason in enumerate(quality.REASONS):
        column = _column(table, reason, np.int64)
        np.add.at(counts[:, :, status], (t[keep], v[keep]), column[keep])
    return QualityCounts(turbines, variables, counts)


def window_fill(stats: pa.Table) -> tuple[int, int]:
    """Windows with at least one valid reading, and windows with all ten."""
    counts = _column(stats, "count", np.int64)
    return int((counts > 0).sum()), int((counts == READINGS_PER_WINDOW).sum())


def expected_totals(stats: pa.Table) -> dict[str, tuple[int, float]]:
    """Non-NULL values and their sum per signal: what the load must have written for the day.

    The load's own melt, summed with numpy (``Table.group_by``'s Acero engine imports pandas,
    about 0.3 s of a run).
    """
    turbines = arrays.names(stats.column("turbine_id"))
    variables = arrays.names(stats.column("variable"))
    return melt(stats, turbines, variables).totals()


def differing_signals(
    expected: Mapping[str, tuple[int, float]], actual: Mapping[str, tuple[int, float]]
) -> list[str]:
    """Signals whose row count or value sum differs between two totals, sorted."""
    none = (0, 0.0)
    return sorted(
        name
        for name in expected.keys() | actual.keys()
        if expected.get(name, none)[0] != actual.get(name, none)[0]
        or not np.isclose(
            expected.get(name, none)[1], actual.get(name, none)[1], rtol=REL_TOLERANCE, atol=1e-6
        )
    )
