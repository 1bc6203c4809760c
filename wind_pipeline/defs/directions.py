"""The circular variables in Dagster (README "Directions"): two checks and the day's yaw error.

- ``circular_means_in_range`` (ERROR, blocking): every ten-minute circular mean lies in its
  variable's range, ``[0, 360)`` for a direction and ``[-180, 180)`` for ``yaw_error``. Like the
  other blocking checks it guards our own arithmetic: no source data can put a mean elsewhere.
- ``circular_means_meaningful`` (WARN): per turbine, the share of the day's windows whose readings
  spread over more than 180° around their mean (or cancel out, no mean at all) is at most
  ``max_wide_percent``. Such a mean says little (a vane turning all round in a calm); that is a
  fact about the wind, so it is recorded, never blocking.
- ``mean_yaw_error_<turbine>``: the circular mean of the day's ten-minute yaw error means, one
  plain number per turbine, so the UI plots each turbine's misalignment over the partitions.

The counting is the core's (``wind_pipeline.etl.circular``); this module holds only what Dagster
needs. With no circular variable selected both checks pass, saying so.
"""

from __future__ import annotations

import warnings
from datetime import date

import dagster as dg
import pyarrow as pa

from wind_pipeline.defs.keys import TEN_MINUTE_STATS
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.etl import circular
from wind_pipeline.etl.catalogue import YAW_ERROR
from wind_pipeline.etl.pipeline import Selection

IN_RANGE, MEANINGFUL = "circular_means_in_range", "circular_means_meaningful"
MAX_WIDE_PERCENT = 10.0  # the run config's default (ten_minute_stats: max_wide_percent)
EXAMPLES = 10  # how many offending (turbine, variable) rows a result's metadata lists
# Per-partition checks are a preview feature, chosen deliberately (see ``checks``).
warnings.filterwarnings("ignore", message="Specifying a partitions_def", category=dg.PreviewWarning)

SPECS = [
    dg.AssetCheckSpec(
        IN_RANGE,
        asset=TEN_MINUTE_STATS,
        blocking=True,
        partitions_def=daily_partitions,
        description="Every circular mean in its range: [0, 360) for wind_direction and "
        "nacelle_position, [-180, 180) for yaw_error.",
    ),
    dg.AssetCheckSpec(
        MEANINGFUL,
        asset=TEN_MINUTE_STATS,
        partitions_def=daily_partitions,
        description="Per turbine and circular variable, the share of the day's windows whose "
        "readings spread over more than 180° around their mean (a meaningless mean) at most "
        "max_wide_percent (WARN).",
    ),
]


def _evaluation(
    name: str, day: date, passed: bool, metadata: dict, description: str
) -> dg.AssetCheckEvaluation:
    blocking = name == IN_RANGE
    return dg.AssetCheckEvaluation(
        asset_key=TEN_MINUTE_STATS,
        check_name=name,
        passed=passed,
        metadata=metadata,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        description=None if passed else description,
        blocking=blocking,
        partition=day.isoformat(),
    )


def circular_means_in_range(
    day: date, stats: pa.Table, selection: Selection
) -> dg.AssetCheckEvaluation:
    """The day's circular means against their variables' ranges."""
    ranges = circular.origins(selection.limits)
    outside = circular.means_out_of_range(stats, ranges)
    metadata = {
        "circular_variables": list(ranges),
        "ranges": {name: [origin, origin + circular.PERIOD] for name, origin in ranges.items()},
        "means_out_of_range": outside,
    }
    return _evaluation(
        IN_RANGE,
        day,
        not any(outside.values()),
        metadata,
        f"{day}: circular means out of their range {outside}",
    )


def circular_means_meaningful(
    day: date, stats: pa.Table, selection: Selection, max_percent: float
) -> dg.AssetCheckEvaluation:
    """The day's share of wide windows per turbine and circular variable, against the limit."""
    names = list(circular.origins(selection.limits))
    wide = circular.wide_turbines(stats, names, max_percent / 100.0)
    offenders = [
        {
            "turbine": row["turbine_id"],
            "variable": row["variable"],
            "wide_windows": row["wide"],
            "windows": row["windows"],
            "wide_percent": round(100.0 * row["share"], 2),
        }
        for row in wide
    ]
    listed = ", ".join(
        f"{o['turbine']} {o['variable']} {o['wide_percent']}% of {o['windows']}"
        for o in offenders[:3]
    )
    metadata = {
        "circular_variables": names,
        "max_wide_percent": max_percent,
        "wide_turbine_variables": len(offenders),
        "wide": offenders[:EXAMPLES],
    }
    return _evaluation(
        MEANINGFUL,
        day,
        not offenders,
        metadata,
        f"{day}: {len(offenders)} turbine variables with more than {max_percent}% of windows "
        f"spread over 180° around their mean, e.g. {listed}",
    )


def evaluations(
    day: date, stats: pa.Table, selection: Selection, max_wide_percent: float
) -> list[dg.AssetCheckEvaluation]:
    """Both checks of one day, in the order of ``SPECS``."""
    return [
        circular_means_in_range(day, stats, selection),
        circular_means_meaningful(day, stats, selection, max_wide_percent),
    ]


def yaw_metadata(stats: pa.Table, selection: Selection) -> dict[str, float]:
    """``mean_yaw_error_<turbine>`` of the day when ``yaw_error`` is selected, in degrees in
    [-180, 180); a turbine without any window mean that day has none."""
    origin = circular.origins(selection.limits).get(YAW_ERROR)
    if origin is None:  # not selected (or a source's own linear column of that name)
        return {}
    days = circular.daily_mean(stats, YAW_ERROR, origin).to_pylist()
    return {
        f"mean_yaw_error_{row['turbine_id']}": round(row["mean"], 6)
        for row in days
        if row["mean"] is not None
    }
