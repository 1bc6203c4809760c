"""The code location's asset keys and group, named once for the modules that refer to an asset
without defining it (checks, sensors, freshness, the source asset)."""

import dagster as dg

GROUP = "wind"
SCADA_READINGS = dg.AssetKey("scada_readings")
RAW_READINGS = dg.AssetKey("raw_readings")
TEN_MINUTE_STATS = dg.AssetKey("ten_minute_stats")
SIGNAL_DATA = dg.AssetKey("signal_data")
