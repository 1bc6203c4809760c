"""Data-quality checks, evaluated inside the asset that produced the data.

Why in the asset body (``check_specs`` + ``AssetCheckResult``) rather than separate
``@asset_check`` steps: the frame is already in memory, so a check costs no second Parquet read,
and the result covers exactly the run's time window, whether that is one day or a year-long
single-run backfill. Each check records one result per run (a range run lists the failing days
in its metadata); one result per partition would add a stored event per day and check, which is
what a year's backfill cannot afford.

Severity, and why:

- ERROR + blocking (a failure stops the run before the next asset): broken invariants of our own
  code, which no source data can excuse: a missing or duplicated ten-minute window,
  ``min <= mean <= max`` or the count/std rules violated, target rows differing from the
  transform output.
- WARN (recorded, the run goes on): properties of the source data, which the statistics still
  describe honestly (a window's ``count`` shows a gap): missing readings, values outside the
  physical range, frozen sensors. Blocking on them would stop a year's backfill for one spike.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pandas as pd

from wind_pipeline.defs.metadata import markdown_table, preview
from wind_pipeline.defs.target import target_signal_totals
from wind_pipeline.etl.pipeline import WINDOWS_PER_DAY

if TYPE_CHECKING:
    import sqlalchemy as sa

MINUTES_PER_DAY = 1440
WINDOW = pd.Timedelta(minutes=10)
MAX_READINGS_PER_WINDOW = 10
# Plausible bounds of each known variable; a reading outside is a sensor or transfer fault.
PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "wind_speed": (0.0, 60.0),  # m/s; the strongest gusts ever measured stay below 115 m/s at 3 s
    "power": (0.0, 3000.0),  # kW, a 3 MW turbine (rated power)
    "ambient_temperature": (-60.0, 60.0),  # °C
}
# A sensor repeating the same value this many minutes in a row is probably stuck...
FROZEN_MINUTES = 10
# ...unless the value is one the physics holds steady: no power below cut-in, rated power above.
STEADY_VALUES: dict[str, tuple[float, ...]] = {"power": (0.0, 3000.0)}
EXAMPLES = 10  # how many offending rows a check's metadata lists
REL_TOLERANCE = 1e-9  # float noise allowed when comparing statistics and sums

RAW_READINGS = dg.AssetKey("raw_readings")
TEN_MINUTE_STATS = dg.AssetKey("ten_minute_stats")
SIGNAL_DATA = dg.AssetKey("signal_data")

RAW_READINGS_CHECKS = [
    dg.AssetCheckSpec(
        "readings_complete",
        asset=RAW_READINGS,
        description=f"{MINUTES_PER_DAY} readings per day, none NULL (WARN: gaps happen).",
    ),
    dg.AssetCheckSpec(
        "readings_in_physical_range",
        asset=RAW_READINGS,
        description="Every reading within its variable's physical range (WARN).",
    ),
    dg.AssetCheckSpec(
        "readings_not_frozen",
        asset=RAW_READINGS,
        description=f"No value repeated {FROZEN_MINUTES}+ minutes in a row (WARN: stuck sensor).",
    ),
]
TEN_MINUTE_STATS_CHECKS = [
    dg.AssetCheckSpec(
        "windows_complete",
        asset=TEN_MINUTE_STATS,
        blocking=True,
        description=f"Exactly {WINDOWS_PER_DAY} windows per variable per day, none duplicated.",
    ),
    dg.AssetCheckSpec(
        "statistics_consistent",
        asset=TEN_MINUTE_STATS,
        blocking=True,
        description="min <= mean <= max, std >= 0, 0 <= count <= 10, NULLs exactly where due.",
    ),
]
SIGNAL_DATA_CHECKS = [
    dg.AssetCheckSpec(
        "target_matches_stats",
        asset=SIGNAL_DATA,
        blocking=True,
        description="Per signal, the target's row count and value sum equal the transform output.",
    ),
]


def _days(start: datetime, end: datetime) -> list[pd.Timestamp]:
    return list(pd.date_range(start, end, freq="D", inclusive="left"))


def _day_label(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d")


def _examples(frame: pd.DataFrame) -> dg.MetadataValue:
    return preview(frame, EXAMPLES)


def readings_complete(raw: pd.DataFrame, start: datetime, end: datetime) -> dg.AssetCheckResult:
    """Missing rows per day and NULL readings per variable, against one row per minute."""
    days = _days(start, end)
    per_day = raw.groupby(raw["timestamp"].dt.floor("D")).size() if len(raw) else pd.Series()
    short = [
        (_day_label(day), int(per_day.get(day, 0)))
        for day in days
        if per_day.get(day, 0) != MINUTES_PER_DAY
    ]
    nulls = {name: int(raw[name].isna().sum()) for name in _variables(raw)}
    missing_rows = MINUTES_PER_DAY * len(days) - len(raw)
    return dg.AssetCheckResult(
        check_name="readings_complete",
        passed=missing_rows == 0 and not any(nulls.values()),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "expected_rows": MINUTES_PER_DAY * len(days),
            "rows": len(raw),
            "missing_rows": missing_rows,
            "null_readings": nulls,
            "incomplete_days": len(short),
            "incomplete_days_sample": dg.MetadataValue.md(
                markdown_table(pd.DataFrame(short[:EXAMPLES], columns=["day", "rows"]))
            ),
        },
    )


def readings_in_physical_range(raw: pd.DataFrame) -> dg.AssetCheckResult:
    """Readings outside ``PHYSICAL_RANGES`` (variables with no known range are skipped)."""
    counts: dict[str, int] = {}
    offenders = []
    for name in _variables(raw):
        if name not in PHYSICAL_RANGES:
            continue
        low, high = PHYSICAL_RANGES[name]
        values = raw[name]
        bad = values.notna() & ((values < low) | (values > high))
        counts[name] = int(bad.sum())
        offenders.append(
            raw.loc[bad, ["timestamp", name]].rename(columns={name: "value"}).assign(variable=name)
        )
    sample = pd.concat(offenders).sort_values("timestamp") if offenders else pd.DataFrame()
    return dg.AssetCheckResult(
        check_name="readings_in_physical_range",
        passed=not any(counts.values()),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "out_of_range": counts,
            "ranges": {name: list(PHYSICAL_RANGES[name]) for name in counts},
            "unchecked_variables": [
                name for name in _variables(raw) if name not in PHYSICAL_RANGES
            ],
            "examples": _examples(sample),
        },
    )


def readings_not_frozen(raw: pd.DataFrame) -> dg.AssetCheckResult:
    """Runs of ``FROZEN_MINUTES`` or more consecutive minutes with the very same value."""
    runs = [run for name in _variables(raw) for run in _frozen_runs(raw, name)]
    table = pd.DataFrame(runs, columns=["variable", "start", "minutes", "value"])
    per_variable = {name: int((table["variable"] == name).sum()) for name in _variables(raw)}
    return dg.AssetCheckResult(
        check_name="readings_not_frozen",
        passed=table.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "frozen_runs": per_variable,
            "frozen_minutes": int(table["minutes"].sum()) if len(table) else 0,
            "longest_run_minutes": int(table["minutes"].max()) if len(table) else 0,
            "examples": _examples(table.sort_values("start")),
        },
    )


def _frozen_runs(raw: pd.DataFrame, name: str) -> Iterable[tuple[str, pd.Timestamp, int, float]]:
    """(variable, first minute, length, value) of each run of one repeated value."""
    values = raw[name].to_numpy(dtype=float)
    stamps = raw["timestamp"].values  # datetime64 in UTC, even for a tz-aware column
    if len(values) < FROZEN_MINUTES:
        return []
    # A run continues while the value repeats on the very next minute (a gap ends it).
    continues = (values[1:] == values[:-1]) & (np.diff(stamps) == np.timedelta64(1, "m"))
    starts = np.flatnonzero(np.r_[True, ~continues])
    lengths = np.diff(np.r_[starts, len(values)])
    steady = STEADY_VALUES.get(name, ())
    return [
        (name, pd.Timestamp(stamps[first]).tz_localize("UTC"), int(length), float(values[first]))
        for first, length in zip(starts, lengths, strict=True)
        if length >= FROZEN_MINUTES and values[first] not in steady
    ]


def windows_complete(
    stats: pd.DataFrame, start: datetime, end: datetime, variables: list[str]
) -> dg.AssetCheckResult:
    """Every ten-minute window of the time range, once per variable."""
    expected = pd.date_range(start, end, freq=WINDOW, inclusive="left", unit="us")
    missing: dict[str, int] = {}
    for name in variables:
        present = pd.DatetimeIndex(stats.loc[stats["variable"] == name, "timestamp"])
        missing[name] = len(expected.difference(present))
    duplicated = int(stats.duplicated(["timestamp", "variable"]).sum())
    unexpected = sorted(set(stats["variable"].unique()) - set(variables))
    return dg.AssetCheckResult(
        check_name="windows_complete",
        passed=not any(missing.values()) and duplicated == 0 and not unexpected,
        metadata={
            "expected_windows_per_variable": len(expected),
            "rows": len(stats),
            "missing_windows": missing,
            "duplicated_windows": duplicated,
            "unexpected_variables": unexpected,
        },
    )


def statistics_consistent(stats: pd.DataFrame) -> dg.AssetCheckResult:
    """The arithmetic every window must obey, whatever the source data."""
    count, mean, low, high, std = (stats[c] for c in ("count", "mean", "min", "max", "std"))
    slack = REL_TOLERANCE * np.maximum(1.0, np.maximum(low.abs(), high.abs()))
    rules = {
        "min_above_mean": low > mean + slack,
        "mean_above_max": mean > high + slack,
        "negative_std": std < 0,
        "count_out_of_0_10": (count < 0) | (count > MAX_READINGS_PER_WINDOW) | count.isna(),
        "nulls_not_matching_count": (mean.isna() != (count == 0))
        | (low.isna() != (count == 0))
        | (high.isna() != (count == 0))
        | (std.isna() != (count < 2)),
    }
    bad = np.logical_or.reduce(list(rules.values()))
    return dg.AssetCheckResult(
        check_name="statistics_consistent",
        passed=not bad.any(),
        metadata={
            "windows_checked": len(stats),
            "violations": {rule: int(mask.sum()) for rule, mask in rules.items()},
            "examples": _examples(stats[bad]),
        },
    )


def target_matches_stats(
    engine: sa.Engine, stats: pd.DataFrame, start: datetime, end: datetime
) -> dg.AssetCheckResult:
    """Row count and value sum per signal in the target, against the transform's output."""
    expected = expected_signal_totals(stats)
    actual = target_signal_totals(engine, sorted(stats["variable"].unique()), start, end)
    both = expected.join(actual, how="outer", lsuffix="_expected", rsuffix="_target").fillna(0)
    count_off = both["rows_expected"] != both["rows_target"]
    sum_off = ~np.isclose(both["sum_expected"], both["sum_target"], rtol=1e-9, atol=1e-6)
    wrong = both[count_off | sum_off]
    return dg.AssetCheckResult(
        check_name="target_matches_stats",
        passed=wrong.empty,
        metadata={
            "expected_rows": int(both["rows_expected"].sum()),
            "target_rows": int(both["rows_target"].sum()),
            "signals_checked": len(both),
            "signals_differing": len(wrong),
            "examples": _examples(wrong.reset_index()),
        },
    )


def expected_signal_totals(stats: pd.DataFrame) -> pd.DataFrame:
    """Non-NULL values and their sum per ``<variable>_<statistic>``: what the load must write."""
    from wind_pipeline.etl.signals import STATISTICS, signal_name

    rows = []
    for variable, group in stats.groupby("variable", sort=True):
        for statistic in STATISTICS:
            values = group[statistic].dropna()
            rows.append((signal_name(variable, statistic), len(values), float(values.sum())))
    return pd.DataFrame(rows, columns=["signal", "rows", "sum"]).set_index("signal")


def _variables(raw: pd.DataFrame) -> list[str]:
    return [name for name in raw.columns if name != "timestamp"]
