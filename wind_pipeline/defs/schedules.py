"""The job over the three assets, and the daily schedule that runs yesterday's partition.

The schedule starts STOPPED (Dagster's default): turn it on in the UI under Automation, or with
``dagster schedule start wind_etl_daily``; the dagster-daemon (started by ``dagster dev``) runs it.
"""

import dagster as dg

from wind_pipeline.defs.partitions import daily_partitions

WIND_ASSETS = dg.AssetSelection.assets("raw_readings", "ten_minute_stats", "signal_data")

wind_etl_job = dg.define_asset_job(
    "wind_etl_job",
    selection=WIND_ASSETS,  # an asset selection brings the assets' checks along
    partitions_def=daily_partitions,
    description="Extract, transform and load one day (or a range in one run) into the target.",
)

# At 00:15 UTC a day is over and its last readings have had a quarter of an hour to arrive;
# a schedule built from a daily partitioned job requests the partition that just ended.
wind_etl_daily = dg.build_schedule_from_partitioned_job(
    wind_etl_job,
    name="wind_etl_daily",
    hour_of_day=0,
    minute_of_hour=15,
    description="Materializes yesterday's partition (UTC) every day at 00:15 UTC.",
)
