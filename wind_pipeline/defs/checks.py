"""Data-quality checks, one result per daily partition, evaluated inside the producing asset.

Why in the asset body (``check_specs``) rather than separate ``@asset_check`` steps: each day is in
memory while the asset streams it, so a check costs no second Parquet read. Why one result per
day (``AssetCheckSpec(partitions_def=…)``): the UI then shows which days are faulty, not one
verdict for a year. ``AssetCheckResult`` can only name the step's single partition key, which a
range run does not have, so the assets yield ``AssetCheckEvaluation(partition=day)`` events, one
per check and day; Dagster stores each against the row its "planned" event created for that
partition (``asset_check_executions``), exactly as for a one-day run.

Severity, and why:

- ERROR + blocking (a failure stops the run before the next asset): broken invariants of our own
  code, which no source data can excuse: a missing or duplicated ten-minute window, the
  arithmetic of a window violated, target rows differing from the transform output.
- WARN (recorded, the run goes on): facts about the source, which quality control handles and
  the statistics describe honestly: missing readings, values outside the physical range of
  ``GET /variables``, frozen sensors, a day with a large share of rejected readings. Blocking on
  them would stop a year's backfill for one stuck sensor.

Each function takes one day and returns its ``AssetCheckEvaluation``; counts are per variable and
per turbine, and a failing day's description names the day and its counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pyarrow as pa

from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.etl import quality
from wind_pipeline.etl.calendar import (
    DAY_US,
    MINUTES_PER_DAY,
    READINGS_PER_WINDOW,
    WINDOW_US,
    WINDOWS_PER_DAY,
    day_range,
    day_start,
    to_utc_us,
)
from wind_pipeline.etl.signals import MIN_COUNT, STATISTICS, signal_name

if TYPE_CHECKING:
    import sqlalchemy as sa

    from wind_pipeline.etl.catalogue import Variable

REL_TOLERANCE = 1e-9  # float noise allowed when comparing statistics and sums
EXAMPLES = 10  # how many offenders a check's metadata names

RAW_READINGS = dg.AssetKey("raw_readings")
TEN_MINUTE_STATS = dg.AssetKey("ten_minute_stats")
SIGNAL_DATA = dg.AssetKey("signal_data")
WARN, ERROR = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR
# Per-partition checks are Dagster 1.13's preview feature, chosen deliberately (one result per
# day); its notice would otherwise be printed by every `dagster` command loading this location.
warnings.filterwarnings("ignore", message="Specifying a partitions_def", category=dg.PreviewWarning)


def _spec(name: str, asset: dg.AssetKey, description: str, *, blocking: bool = False):
    return dg.AssetCheckSpec(
        name,
        asset=asset,
        blocking=blocking,
        partitions_def=daily_partitions,
        description=description,
    )


RAW_READINGS_CHECKS = [
    _spec(
        "readings_complete",
        RAW_READINGS,
        f"{MINUTES_PER_DAY} readings per turbine per day, none NULL (WARN: gaps happen).",
    ),
    _spec(
        "readings_in_physical_range",
        RAW_READINGS,
        "Every reading within its variable's physical range from GET /variables (WARN).",
    ),
    _spec(
        "readings_not_frozen",
        RAW_READINGS,
        f"No value repeated {quality.FROZEN_RUN}+ minutes in a row inside the range "
        "(WARN: stuck sensor).",
    ),
]
TEN_MINUTE_STATS_CHECKS = [
    _spec(
        "windows_complete",
        TEN_MINUTE_STATS,
        f"Exactly {WINDOWS_PER_DAY} windows per turbine per variable per day, none duplicated.",
        blocking=True,
    ),
    _spec(
        "statistics_consistent",
        TEN_MINUTE_STATS,
        "min <= mean <= max, std >= 0, 0 <= count <= 10, rejected >= 0, NULLs exactly where due.",
        blocking=True,
    ),
    _spec(
        "rejected_share",
        TEN_MINUTE_STATS,
        "Share of the day's readings rejected by quality control at most max_rejected_percent "
        "(WARN), with the counts per reason and per turbine.",
    ),
]
SIGNAL_DATA_CHECKS = [
    _spec(
        "target_matches_stats",
        SIGNAL_DATA,
        "Per signal, the target's row count and value sum for the day equal the transform output.",
        blocking=True,
    ),
]
SPECS = {
    spec.key: spec for spec in RAW_READINGS_CHECKS + TEN_MINUTE_STATS_CHECKS + SIGNAL_DATA_CHECKS
}


def evaluation(
    asset: dg.AssetKey,
    name: str,
    day: str,
    passed: bool,
    metadata: Mapping[str, object],
    *,
    description: str | None = None,
) -> dg.AssetCheckEvaluation:
    """The result of check ``name`` on ``asset`` for partition ``day``, severity from its spec."""
    spec = SPECS[dg.AssetCheckKey(asset, name)]
    return dg.AssetCheckEvaluation(
        asset_key=asset,
        check_name=name,
        passed=passed,
        metadata=metadata,
        severity=ERROR if spec.blocking else WARN,
        description=None if passed else description,
        blocking=spec.blocking,
        partition=day,
    )


def check_events(
    context: dg.AssetExecutionContext, evaluations: list[dg.AssetCheckEvaluation]
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """What an asset yields after its value: each selected check's (empty) output once, which
    Dagster requires, then the day-by-day evaluations of the selected checks.

    A range run yields many evaluations per check, so they cannot come as ``AssetCheckResult``
    (which would yield that output once per result).
    """
    selected = context.selected_asset_check_keys
    names = {spec.key: name for name, spec in context.assets_def.check_specs_by_output_name.items()}
    for key in selected:
        yield dg.Output(None, output_name=names[key])
    for found in evaluations:
        if found.asset_check_key in selected:
            yield found


# --- raw_readings: facts about the source --------------------------------------------------


@dataclass(frozen=True)
class RawDay:
    """One day of RAW readings with what the checks need: turbine codes and each status."""

    day: str
    turbines: tuple[str, ...]
    rows_per_turbine: np.ndarray  # int64 per turbine
    nulls: dict[str, np.ndarray]  # variable -> NULL readings per turbine
    reasons: dict[str, np.ndarray]  # variable -> (turbine, REASONS) counts
    limits: dict[str, Variable]


def turbine_codes(column: pa.ChunkedArray | pa.Array, turbines: Sequence[str]) -> np.ndarray:
    """Each row's position in ``turbines`` (-1 for a turbine not in it)."""
    from wind_pipeline.etl.arrays import to_numpy

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    position = {name: i for i, name in enumerate(turbines)}
    lookup = np.array([position.get(name, -1) for name in column.dictionary.to_pylist()] or [-1])
    indices = to_numpy(column.indices, np.int64)  # not Array.to_numpy: that imports pandas
    return lookup[indices] if len(indices) else np.empty(0, dtype=np.int64)


def raw_day(
    day: str, table: pa.Table, turbines: Sequence[str], limits: Mapping[str, Variable]
) -> RawDay:
    """Classify each reading with the core's QC (the one home of the rules) and count."""
    from wind_pipeline.etl.arrays import to_numpy

    turbines = tuple(turbines)
    codes = turbine_codes(table.column("turbine_id"), turbines)
    stamps = to_numpy(table.column("timestamp"), np.int64)
    segments = quality.day_segments(np.maximum(codes, 0), stamps)
    known = codes >= 0
    rows = np.bincount(codes[known], minlength=len(turbines))
    nulls, reasons = {}, {}
    for name, limit in limits.items():
        values = to_numpy(table.column(name), np.float64)
        status = quality.classify(segments, stamps, values, limit)
        nulls[name] = np.bincount(codes[known & np.isnan(values)], minlength=len(turbines))
        reasons[name] = quality.reason_counts(status[known], codes[known], len(turbines))
    return RawDay(day, turbines, rows, nulls, reasons, dict(limits))


def _by_turbine(turbines: Sequence[str], counts: np.ndarray) -> dict[str, int]:
    """Only the turbines with a non-zero count (a fleet of 50 stays readable)."""
    return {turbine: int(n) for turbine, n in zip(turbines, counts, strict=True) if n}


def readings_complete(raw: RawDay) -> dg.AssetCheckEvaluation:
    expected = MINUTES_PER_DAY * len(raw.turbines)
    missing_rows = np.maximum(MINUTES_PER_DAY - raw.rows_per_turbine, 0)
    nulls = {name: int(counts.sum()) for name, counts in raw.nulls.items()}
    gaps = missing_rows + sum(raw.nulls.values(), np.zeros(len(raw.turbines), dtype=np.int64))
    passed = not missing_rows.any() and not any(nulls.values())
    return evaluation(
        RAW_READINGS,
        "readings_complete",
        raw.day,
        passed,
        {
            "expected_rows": expected,
            "rows": int(raw.rows_per_turbine.sum()),
            "missing_rows": int(missing_rows.sum()),
            "null_readings": nulls,
            "missing_rows_by_turbine": _by_turbine(raw.turbines, missing_rows),
            "incomplete_turbines": int((gaps > 0).sum()),
        },
        description=f"{raw.day}: {int(missing_rows.sum())} of {expected} rows missing, NULL "
        f"readings {nulls}",
    )


def _status_check(raw: RawDay, name: str, status: int, label: str) -> dg.AssetCheckEvaluation:
    per_variable = {var: int(counts[:, status].sum()) for var, counts in raw.reasons.items()}
    per_turbine = sum(
        (counts[:, status] for counts in raw.reasons.values()),
        np.zeros(len(raw.turbines), dtype=np.int64),
    )
    metadata: dict[str, object] = {
        label: per_variable,
        f"{label}_total": sum(per_variable.values()),
        f"{label}_by_turbine": _by_turbine(raw.turbines, per_turbine),
    }
    if status == quality.OUT_OF_RANGE:
        metadata["ranges"] = {
            var: [limit.physical_min, limit.physical_max] for var, limit in raw.limits.items()
        }
    return evaluation(
        RAW_READINGS,
        name,
        raw.day,
        not any(per_variable.values()),
        metadata,
        description=f"{raw.day}: {label.replace('_', ' ')} {per_variable}, by turbine "
        f"{_by_turbine(raw.turbines, per_turbine)}",
    )


def readings_in_physical_range(raw: RawDay) -> dg.AssetCheckEvaluation:
    return _status_check(raw, "readings_in_physical_range", quality.OUT_OF_RANGE, "out_of_range")


def readings_not_frozen(raw: RawDay) -> dg.AssetCheckEvaluation:
    return _status_check(raw, "readings_not_frozen", quality.FROZEN, "frozen_readings")


# --- ten_minute_stats: our own invariants, and the day's rejected share ----------------------


def _column(table: pa.Table, name: str, dtype=np.float64) -> np.ndarray:
    from wind_pipeline.etl.arrays import to_numpy

    return to_numpy(table.column(name), dtype)


def windows_complete(
    day: str, stats: pa.Table, turbines: Sequence[str], variables: Sequence[str]
) -> dg.AssetCheckEvaluation:
    """Every window of the day, once per turbine and variable, and nothing else."""
    turbines, variables = tuple(turbines), tuple(variables)
    t = turbine_codes(stats.column("turbine_id"), turbines)
    v = turbine_codes(stats.column("variable"), variables)
    offset = _column(stats, "timestamp", np.int64) - to_utc_us(day_start(date.fromisoformat(day)))
    inside = (t >= 0) & (v >= 0) & (offset >= 0) & (offset < DAY_US) & (offset % WINDOW_US == 0)
    slot = (t[inside] * len(variables) + v[inside]) * WINDOWS_PER_DAY + offset[inside] // WINDOW_US
    seen = np.bincount(slot, minlength=len(turbines) * len(variables) * WINDOWS_PER_DAY)
    seen = seen.reshape(len(turbines), len(variables), WINDOWS_PER_DAY)
    missing = {var: int((seen[:, i] == 0).sum()) for i, var in enumerate(variables)}
    duplicated = int(np.maximum(seen - 1, 0).sum())
    unexpected = int((~inside).sum())
    passed = not any(missing.values()) and not duplicated and not unexpected
    return evaluation(
        TEN_MINUTE_STATS,
        "windows_complete",
        day,
        passed,
        {
            "expected_windows_per_variable": WINDOWS_PER_DAY * len(turbines),
            "rows": stats.num_rows,
            "missing_windows": missing,
            "duplicated_windows": duplicated,
            "unexpected_rows": unexpected,
        },
        description=f"{day}: missing windows {missing}, {duplicated} duplicated, "
        f"{unexpected} outside the day's turbines, variables or grid",
    )


def statistics_consistent(day: str, stats: pa.Table) -> dg.AssetCheckEvaluation:
    """The arithmetic every window must obey, whatever the source data."""
    count = _column(stats, "count")
    rejected = _column(stats, "rejected")
    mean, low, high, std = (_column(stats, name) for name in ("mean", "min", "max", "std"))
    with np.errstate(invalid="ignore"):
        slack = REL_TOLERANCE * np.maximum(1.0, np.fmax(np.abs(low), np.abs(high)))
        rules = {
            "min_above_mean": low > mean + slack,
            "mean_above_max": mean > high + slack,
            "negative_std": std < 0,
            "count_out_of_0_10": (count < 0) | (count > READINGS_PER_WINDOW) | np.isnan(count),
            "negative_rejected": (rejected < 0) | np.isnan(rejected),
            "nulls_not_matching_count": np.logical_or.reduce(
                [
                    np.isnan(values) != (count < MIN_COUNT[name])
                    for name, values in (("mean", mean), ("min", low), ("max", high), ("std", std))
                ]
            ),
        }
    bad = np.logical_or.reduce(list(rules.values()))
    violations = {rule: int(mask.sum()) for rule, mask in rules.items()}
    return evaluation(
        TEN_MINUTE_STATS,
        "statistics_consistent",
        day,
        not bad.any(),
        {"windows_checked": stats.num_rows, "violations": violations},
        description=f"{day}: violations {violations}",
    )


@dataclass(frozen=True)
class QualityDay:
    """One day's QC counts (the transform's QUALITY rows) summed the ways metadata needs."""

    day: str
    turbines: tuple[str, ...]
    variables: tuple[str, ...]
    counts: np.ndarray  # (turbine, variable, REASONS) readings per status; missing incl. gaps

    @property
    def rejected(self) -> np.ndarray:  # (turbine, variable)
        return self.counts[:, :, list(quality.REJECTED)].sum(axis=2)

    @property
    def present(self) -> np.ndarray:  # non-NULL readings that exist: valid + rejected
        return self.counts[:, :, quality.VALID] + self.rejected


def quality_day(
    day: str, table: pa.Table, turbines: Sequence[str], variables: Sequence[str]
) -> QualityDay:
    turbines, variables = tuple(turbines), tuple(variables)
    t = turbine_codes(table.column("turbine_id"), turbines)
    v = turbine_codes(table.column("variable"), variables)
    counts = np.zeros((len(turbines), len(variables), len(quality.REASONS)), dtype=np.int64)
    keep = (t >= 0) & (v >= 0)
    for status, reason in enumerate(quality.REASONS):
        column = _column(table, reason, np.int64)
        np.add.at(counts[:, :, status], (t[keep], v[keep]), column[keep])
    return QualityDay(day, turbines, variables, counts)


def rejected_share(q: QualityDay, max_percent: float) -> dg.AssetCheckEvaluation:
    """The day's share of present readings that QC rejected, against ``max_percent``."""
    from wind_pipeline.defs.metadata import percent

    rejected, present = int(q.rejected.sum()), int(q.present.sum())
    share = percent(rejected, present)
    by_reason = {
        quality.REASONS[status]: int(q.counts[:, :, status].sum()) for status in quality.REJECTED
    }
    by_turbine = {
        turbine: {
            "rejected": int(q.rejected[i].sum()),
            "percent": percent(q.rejected[i].sum(), q.present[i].sum()),
        }
        for i, turbine in enumerate(q.turbines)
        if q.rejected[i].sum()
    }
    reasons = ", ".join(f"{reason} {n}" for reason, n in by_reason.items())
    return evaluation(
        TEN_MINUTE_STATS,
        "rejected_share",
        q.day,
        share <= max_percent,
        {
            "rejected_percent": share,
            "max_rejected_percent": max_percent,
            "rejected_readings": rejected,
            "present_readings": present,
            "rejected_by_reason": by_reason,
            "rejected_by_turbine": by_turbine,
        },
        description=f"{q.day}: {share}% of {present} readings rejected (more than "
        f"{max_percent}%): {reasons}",
    )


# --- signal_data: the target holds exactly what the transform produced -----------------------


def expected_signal_totals(stats: pa.Table) -> dict[str, tuple[int, float]]:
    """Non-NULL values and their sum per signal: what the load must have written for the day.

    numpy over the dictionary codes, not ``Table.group_by`` (whose Acero engine imports pandas,
    about 0.3 s of a run).
    """
    turbines = _names(stats.column("turbine_id"))
    variables = _names(stats.column("variable"))
    group = turbine_codes(stats.column("turbine_id"), turbines) * len(variables)
    group += turbine_codes(stats.column("variable"), variables)
    size = len(turbines) * len(variables)
    totals = {}
    for name in STATISTICS:
        values = _column(stats, name)
        defined = ~np.isnan(values)
        rows = np.bincount(group[defined], minlength=size)
        sums = np.bincount(group[defined], weights=values[defined], minlength=size)
        for index in np.flatnonzero(rows):
            turbine, variable = turbines[index // len(variables)], variables[index % len(variables)]
            totals[signal_name(turbine, variable, name)] = (int(rows[index]), float(sums[index]))
    return totals


def _names(column: pa.ChunkedArray) -> tuple[str, ...]:
    column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    return tuple(column.dictionary.to_pylist())


def target_matches_stats(
    day: str,
    stats: pa.Table,
    actual: Mapping[str, tuple[int, float]],
) -> dg.AssetCheckEvaluation:
    """Row count and value sum per signal in the target, against the transform's output."""
    expected = expected_signal_totals(stats)
    differing = sorted(
        name
        for name in expected.keys() | actual.keys()
        if expected.get(name, (0, 0.0))[0] != actual.get(name, (0, 0.0))[0]
        or not np.isclose(
            expected.get(name, (0, 0.0))[1],
            actual.get(name, (0, 0.0))[1],
            rtol=REL_TOLERANCE,
            atol=1e-6,
        )
    )
    expected_rows = sum(rows for rows, _ in expected.values())
    target_rows = sum(rows for rows, _ in actual.values())
    return evaluation(
        SIGNAL_DATA,
        "target_matches_stats",
        day,
        not differing,
        {
            "expected_rows": expected_rows,
            "target_rows": target_rows,
            "signals_checked": len(expected.keys() | actual.keys()),
            "signals_differing": len(differing),
            "differing_signals": differing[:EXAMPLES],
        },
        description=f"{day}: {len(differing)} signals differ from the transform output "
        f"({expected_rows} rows expected, {target_rows} in the target), e.g. {differing[:3]}",
    )


def target_totals(
    engine: sa.Engine, turbines: Sequence[str], variables: Sequence[str], day: str
) -> dict[str, tuple[int, float]]:
    """Rows and value sum per signal stored in the target for the day."""
    from wind_pipeline.etl.target import signal_totals

    return signal_totals(engine, turbines, variables, *day_range(date.fromisoformat(day)))
