"""The ETL core: plain Python, no Dagster. ``wind-etl`` and the Dagster assets both call it."""
