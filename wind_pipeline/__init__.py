"""wind_pipeline: a Dagster code location turning one-minute wind readings into 10-minute stats."""
