"""``scada_readings``: the source's readings as Dagster sees them, one version per day.

An observable source asset, upstream of ``raw_readings``: it is never materialized, only
observed. Each observation of a day carries that day's data version (a digest of its turbines'
versions in ``GET /days``), so the asset's partitions in the UI show which version the source
holds now, next to the version each ``signal_data`` materialization loaded. The
``source_changes`` sensor records a day's observation whenever its version changes; "Observe"
in the UI records the whole lookback window at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from datetime import UTC, date, datetime

import dagster as dg

from wind_pipeline.defs.keys import GROUP, SCADA_READINGS
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.defs.resources import ConnectorApiResource
from wind_pipeline.etl.reload import by_day
from wind_pipeline.etl.sync import default_window
from wind_pipeline.etl.versions import SourceDay, day_version

# An observable source asset is what Dagster offers for data it reads but does not make; its beta
# notice would otherwise be printed by every `dagster` command that loads this code location.
warnings.filterwarnings(
    "ignore", message="Function `observable_source_asset`", category=dg.BetaWarning
)


def day_versions(rows: Iterable[SourceDay]) -> dict[str, str]:
    """Each day's version (``day_version``) by partition key, for the days with readings."""
    return {
        day.isoformat(): day_version(versions.items())
        for day, (versions, _) in sorted(by_day(rows).items())
    }


def partition_window(today: date) -> tuple[date, date] | None:
    """The sync window (``WIND_PIPELINE_SYNC_LOOKBACK_DAYS`` ending yesterday) cut to the
    partitions; None when not one of its days is a partition yet."""
    first, last = default_window(today)
    start = daily_partitions.start.date()
    first = max(first, start)
    return (first, last) if first <= last else None


@dg.observable_source_asset(
    name=SCADA_READINGS.path[-1],
    partitions_def=daily_partitions,
    group_name=GROUP,
    description="The source's one-minute readings (connector API): observed, never "
    "materialized; each day's data version changes whenever one of its readings is inserted, "
    "corrected or deleted.",
)
def scada_readings(
    context: dg.AssetExecutionContext, connector_api: ConnectorApiResource
) -> dg.DataVersionsByPartition:
    window = partition_window(datetime.now(UTC).date())
    if window is None:
        return dg.DataVersionsByPartition({})
    versions = day_versions(connector_api.client.days(*window))
    return dg.DataVersionsByPartition({k: dg.DataVersion(v) for k, v in versions.items()})
