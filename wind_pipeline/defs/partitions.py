"""The one partitions definition: a UTC day per partition, from ``WIND_PIPELINE_START_DATE``.

Assets, the job, the schedule and the IO manager all import ``daily_partitions`` from here, so
they can never disagree about where a day starts.
"""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

START_DATE_VARIABLE = "WIND_PIPELINE_START_DATE"
# A fixed default keeps the definitions loadable with no environment at all.
DEFAULT_START_DATE = "2024-01-01"


def start_date_from_env() -> str:
    """The first partition day, as ``YYYY-MM-DD``, checked so a typo fails at load time."""
    raw = os.environ.get(START_DATE_VARIABLE, "").strip() or DEFAULT_START_DATE
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise ValueError(
            f"{START_DATE_VARIABLE}={raw!r} is not a date; "
            f"use the form YYYY-MM-DD, e.g. {DEFAULT_START_DATE}"
        ) from None


daily_partitions = dg.DailyPartitionsDefinition(start_date=start_date_from_env(), timezone="UTC")


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The run's days, once, from its time window (one day or a range): the assets' only edge
    between Dagster's partition keys and the core's dates."""
    from wind_pipeline.etl.calendar import whole_days

    window = context.partition_time_window
    return whole_days(window.start, window.end)
