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
per turbine, and a failing day's description names the day and its counts. The counting itself is
the core's (``wind_pipeline.etl.audit``); this module holds only what Dagster needs.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pyarrow as pa

from wind_pipeline.defs import directions
from wind_pipeline.defs.keys import RAW_READINGS, SIGNAL_DATA, TEN_MINUTE_STATS
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.etl import audit, quality
from wind_pipeline.etl.calendar import MINUTES_PER_DAY, WINDOWS_PER_DAY, day_range

if TYPE_CHECKING:
    import sqlalchemy as sa

EXAMPLES = 10  # how many offenders a check's metadata names

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
        "min <= mean <= max, std >= 0, NULLs exactly where due; with quality control on "
        "0 <= count <= 10 and rejected >= 0, with it off count >= 0 (off-grid readings count "
        "too) and rejected = 0.",
        blocking=True,
    ),
    _spec(
        "rejected_share",
        TEN_MINUTE_STATS,
        "Share of the day's readings rejected by quality control at most max_rejected_percent "
        "(WARN), with the counts per reason and per turbine.",
    ),
    *directions.SPECS,  # the circular variables' two (README "Directions")
]
SIGNAL_DATA_CHECKS = [
    _spec(
        "target_matches_stats",
        SIGNAL_DATA,
        "Per signal, the target's row count and value sum for the day equal the transform output.",
        blocking=True,
    ),
    _spec(
        "default_partition_empty",
        SIGNAL_DATA,
        "The target's DEFAULT partition holds no row: every row is in its month's partition "
        '(README, "Beyond one machine"). One count per run, reported for each of its days.',
        blocking=True,
    ),
]
SPECS = {
    spec.key: spec for spec in RAW_READINGS_CHECKS + TEN_MINUTE_STATS_CHECKS + SIGNAL_DATA_CHECKS
}


def evaluation(
    asset: dg.AssetKey,
    name: str,
    day: date,
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
        partition=day.isoformat(),
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


def _by_turbine(turbines: Sequence[str], counts: np.ndarray) -> dict[str, int]:
    """Only the turbines with a non-zero count (a fleet of 50 stays readable)."""
    return {turbine: int(n) for turbine, n in zip(turbines, counts, strict=True) if n}


def readings_complete(day: date, raw: audit.RawCounts) -> dg.AssetCheckEvaluation:
    expected = MINUTES_PER_DAY * len(raw.turbines)
    missing_rows = np.maximum(MINUTES_PER_DAY - raw.rows_per_turbine, 0)
    nulls = {name: int(counts.sum()) for name, counts in raw.nulls.items()}
    gaps = missing_rows + sum(raw.nulls.values(), np.zeros(len(raw.turbines), dtype=np.int64))
    passed = not missing_rows.any() and not any(nulls.values())
    return evaluation(
        RAW_READINGS,
        "readings_complete",
        day,
        passed,
        {
            "expected_rows": expected,
            "rows": int(raw.rows_per_turbine.sum()),
            "missing_rows": int(missing_rows.sum()),
            "null_readings": nulls,
            "missing_rows_by_turbine": _by_turbine(raw.turbines, missing_rows),
            "incomplete_turbines": int((gaps > 0).sum()),
        },
        description=f"{day}: {int(missing_rows.sum())} of {expected} rows missing, NULL "
        f"readings {nulls}",
    )


def _status_check(
    day: date, raw: audit.RawCounts, name: str, status: int, label: str
) -> dg.AssetCheckEvaluation:
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
        day,
        not any(per_variable.values()),
        metadata,
        description=f"{day}: {label.replace('_', ' ')} {per_variable}, by turbine "
        f"{_by_turbine(raw.turbines, per_turbine)}",
    )


def readings_in_physical_range(day: date, raw: audit.RawCounts) -> dg.AssetCheckEvaluation:
    return _status_check(
        day, raw, "readings_in_physical_range", quality.OUT_OF_RANGE, "out_of_range"
    )


def readings_not_frozen(day: date, raw: audit.RawCounts) -> dg.AssetCheckEvaluation:
    return _status_check(day, raw, "readings_not_frozen", quality.FROZEN, "frozen_readings")


# --- ten_minute_stats: our own invariants, and the day's rejected share ----------------------


def windows_complete(
    day: date, stats: pa.Table, turbines: Sequence[str], variables: Sequence[str]
) -> dg.AssetCheckEvaluation:
    """Every window of the day, once per turbine and variable, and nothing else."""
    found = audit.window_counts(day, stats, tuple(turbines), tuple(variables))
    passed = not any(found.missing.values()) and not found.duplicated and not found.unexpected
    return evaluation(
        TEN_MINUTE_STATS,
        "windows_complete",
        day,
        passed,
        {
            "expected_windows_per_variable": WINDOWS_PER_DAY * len(turbines),
            "rows": stats.num_rows,
            "missing_windows": found.missing,
            "duplicated_windows": found.duplicated,
            "unexpected_rows": found.unexpected,
        },
        description=f"{day}: missing windows {found.missing}, {found.duplicated} duplicated, "
        f"{found.unexpected} outside the day's turbines, variables or grid",
    )


def statistics_consistent(
    day: date, stats: pa.Table, *, qc: bool = True
) -> dg.AssetCheckEvaluation:
    """The arithmetic every window must obey, whatever the source data, in the QC mode used."""
    violations = audit.consistency_violations(stats, qc=qc)
    return evaluation(
        TEN_MINUTE_STATS,
        "statistics_consistent",
        day,
        not any(violations.values()),
        {"windows_checked": stats.num_rows, "quality_control": qc, "violations": violations},
        description=f"{day}: violations {violations}",
    )


def rejected_share(
    day: date, q: audit.QualityCounts, max_percent: float
) -> dg.AssetCheckEvaluation:
    """The day's share of present readings that QC rejected, against ``max_percent``."""
    from wind_pipeline.defs.metadata import percent

    rejected, present = int(q.rejected.sum()), int(q.present.sum())
    share = percent(rejected, present)
    by_reason = q.by_reason()
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
        day,
        share <= max_percent,
        {
            "rejected_percent": share,
            "max_rejected_percent": max_percent,
            "rejected_readings": rejected,
            "present_readings": present,
            "rejected_by_reason": by_reason,
            "rejected_by_turbine": by_turbine,
        },
        description=f"{day}: {share}% of {present} readings rejected (more than "
        f"{max_percent}%): {reasons}",
    )


# --- signal_data: the target holds exactly what the transform produced -----------------------


def target_matches_stats(
    day: date, stats: pa.Table, actual: Mapping[str, tuple[int, float]]
) -> dg.AssetCheckEvaluation:
    """Row count and value sum per signal in the target, against the transform's output."""
    expected = audit.expected_totals(stats)
    differing = audit.differing_signals(expected, actual)
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
    engine: sa.Engine, turbines: Sequence[str], variables: Sequence[str], day: date
) -> dict[str, tuple[int, float]]:
    """Rows and value sum per signal stored in the target for the day."""
    from wind_pipeline.etl.target import signal_totals

    return signal_totals(engine, turbines, variables, *day_range(day))


def default_partition_empty(day: date, rows: int) -> dg.AssetCheckEvaluation:
    """``rows`` found in ``data_default`` (counted once per run); it must stay empty because a
    row there blocks creating its month's partition and is missed by a month's ``prune``."""
    return evaluation(
        SIGNAL_DATA,
        "default_partition_empty",
        day,
        rows == 0,
        {"default_partition_rows": rows},
        description=f"{day}: {rows} rows in the target's DEFAULT partition (data_default); "
        "move them into their months' partitions",
    )


def default_partition_rows(engine: sa.Engine) -> int:
    """Rows in the target's DEFAULT partition, one query."""
    from wind_pipeline.etl.months import default_partition_rows as count

    conn = engine.raw_connection()
    try:
        return count(conn)
    finally:
        conn.close()
