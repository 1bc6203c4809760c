"""The three assets of one daily partition: extract, transform, load.

Each works on ``context.partition_time_window``, so one day and a single-run backfill of a year
go through the same code (``BackfillPolicy.single_run()``). The work itself is the ETL core's;
this module adds what Dagster needs: retries, metadata, checks.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import dagster as dg
import pandas as pd
from pydantic import Field

from wind_pipeline.defs import checks
from wind_pipeline.defs.metadata import days_of, percent, preview, time_span
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource
from wind_pipeline.etl.config import DEFAULT_VARIABLES
from wind_pipeline.etl.errors import InvalidInputError, TransientError
from wind_pipeline.etl.signals import STATISTICS

GROUP = "wind"
# BackfillPolicy is a deliberate choice (a year is one run); its beta notice would otherwise be
# printed three times by every `dagster` command that loads this code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
SINGLE_RUN = dg.BackfillPolicy.single_run()
# On top of the client's own quick retries: an API restart or a network blip of a few minutes
# is ridden out (about 10 s, 20 s, 40 s, with jitter so parallel runs do not retry in step).
EXTRACT_RETRY = dg.RetryPolicy(
    max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


class ExtractConfig(dg.Config):
    """Run configuration of ``raw_readings`` (the launchpad shows these with their defaults)."""

    variables: list[str] = Field(
        default_factory=lambda: list(DEFAULT_VARIABLES),
        description="Source variables to fetch; GET /variables on the API lists them.",
    )
    allow_empty: bool = Field(
        default=False,
        description="Write zero counts for days with no source data instead of failing.",
    )


@contextmanager
def terminal_errors_fail_once() -> Iterator[None]:
    """Let transient errors through to the RetryPolicy; fail everything else without retries."""
    try:
        yield
    except TransientError:
        raise
    except Exception as exc:
        raise dg.Failure(description=str(exc) or type(exc).__name__, allow_retries=False) from exc


def window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    time_window = context.partition_time_window
    return time_window.start, time_window.end


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    group_name=GROUP,
    kinds={"fastapi", "pandas", "parquet"},
    retry_policy=EXTRACT_RETRY,
    check_specs=checks.RAW_READINGS_CHECKS,
    description="One-minute readings of the day(s), fetched from the connector API as Arrow.",
)
def raw_readings(
    context: dg.AssetExecutionContext, config: ExtractConfig, connector_api: ConnectorApiResource
):  # no return annotation: with check_specs Dagster reads one as the outputs' tuple
    start, end = window(context)
    with terminal_errors_fail_once():
        raw = fetch_readings(connector_api, start, end, config)
    for key, day, day_start, day_end in days_of(raw, context.partition_keys):
        context.add_asset_metadata(raw_metadata(day, day_start, day_end), partition_key=key)
    return dg.MaterializeResult(
        value=raw,
        check_results=[
            checks.readings_complete(raw, start, end),
            checks.readings_in_physical_range(raw),
            checks.readings_not_frozen(raw),
        ],
    )


def fetch_readings(
    connector_api: ConnectorApiResource, start: datetime, end: datetime, config: ExtractConfig
) -> pd.DataFrame:
    """The readings of ``[start, end)``, refusing days without any (unless ``allow_empty``)."""
    from wind_pipeline.etl.extract import extract
    from wind_pipeline.etl.pipeline import count_rows_per_day, days_between, refuse_empty_days
    from wind_pipeline.etl.transform import readings_from_frame

    if not config.variables:
        raise InvalidInputError(
            "no variables to fetch", hint=f"list some in the run config, e.g. {DEFAULT_VARIABLES}"
        )
    raw = extract(connector_api.client, start, end, config.variables)
    if not config.allow_empty:
        days = days_between(start.date(), end.date() - timedelta(days=1))
        stamps = readings_from_frame(raw, ()).timestamps_us
        refuse_empty_days(
            days,
            count_rows_per_day(stamps, days),
            hint="or set allow_empty: true in the run config of raw_readings",
        )
    return raw


def raw_metadata(raw: pd.DataFrame, start: datetime, end: datetime) -> dict:
    """One day's (or window's) readings: how many, how complete, a preview."""
    minutes = int((end - start).total_seconds() // 60)
    variables = [name for name in raw.columns if name != "timestamp"]
    return {
        "row_count": len(raw),
        "expected_rows": minutes,
        "coverage_percent": percent(len(raw), minutes),
        "non_null_percent": {name: percent(raw[name].notna().sum(), minutes) for name in variables},
        "variables": variables,
        **time_span(raw),
        "preview": preview(raw),
    }


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    check_specs=checks.TEN_MINUTE_STATS_CHECKS,
    description="count, mean, min, max and std of each variable per clock-aligned 10-minute "
    "window in UTC; every window of the day is present, empty ones with count 0.",
)
def ten_minute_stats(context: dg.AssetExecutionContext, raw_readings: pd.DataFrame):
    from wind_pipeline.etl.transform import ten_minute_stats as compute

    start, end = window(context)
    variables = [name for name in raw_readings.columns if name != "timestamp"]
    with terminal_errors_fail_once():
        stats = compute(raw_readings, start, end, variables)
    for key, day, _, _ in days_of(stats, context.partition_keys):
        context.add_asset_metadata(stats_metadata(day), partition_key=key)
    return dg.MaterializeResult(
        value=stats,
        check_results=[
            checks.windows_complete(stats, start, end, variables),
            checks.statistics_consistent(stats),
        ],
    )


def stats_metadata(stats: pd.DataFrame) -> dict:
    """One day's windows: how many, how many had data, a preview."""
    counts = stats["count"]
    return {
        "row_count": len(stats),
        "variables": sorted(stats["variable"].unique()),
        "windows_with_data_percent": percent((counts > 0).sum(), len(stats)),
        "full_windows_percent": percent(
            (counts == checks.MAX_READINGS_PER_WINDOW).sum(), len(stats)
        ),
        **time_span(stats),
        "preview": preview(stats),
    }


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    group_name=GROUP,
    kinds={"postgres", "sqlalchemy"},
    check_specs=checks.SIGNAL_DATA_CHECKS,
    description="The statistics in the target database (signal, data), replaced day by day "
    "in one transaction each: re-running a day never duplicates its rows.",
)
def signal_data(
    context: dg.AssetExecutionContext,
    ten_minute_stats: pd.DataFrame,
    target_db: TargetDatabaseResource,
):
    from wind_pipeline.etl.load import load_days
    from wind_pipeline.etl.transform import stats_from_frame

    start, end = window(context)
    with terminal_errors_fail_once():
        written = load_days(target_db.engine, stats_from_frame(ten_minute_stats))
        check = checks.target_matches_stats(target_db.engine, ten_minute_stats, start, end)
    for key, day, _, _ in days_of(ten_minute_stats, context.partition_keys):
        rows = written.get(date.fromisoformat(key), 0)
        context.add_asset_metadata(signal_metadata(day, rows), partition_key=key)
    return dg.MaterializeResult(
        metadata={
            "signals": int(check.metadata["signals_checked"].value),
            "target": target_db.engine.url.render_as_string(hide_password=True),
        },
        check_results=[check],
    )


def signal_metadata(stats: pd.DataFrame, rows_written: int) -> dict:
    """One day in the target: rows written, and a preview of them as stored (signal, value)."""
    first_window = stats[stats["timestamp"] == stats["timestamp"].iloc[0]] if len(stats) else stats
    # Plain records, not melt(): this runs once per day of a range, and melt costs ~20 ms a call.
    stored = sorted(
        (row["variable"] + "_" + statistic, row["timestamp"], row[statistic])
        for row in first_window.to_dict("records")
        for statistic in STATISTICS
        if not pd.isna(row[statistic])
    )
    return {
        "rows_written": rows_written,
        "defined_values_percent": percent(rows_written, len(stats) * len(STATISTICS)),
        **time_span(stats),
        "preview": preview(pd.DataFrame(stored, columns=["signal", "timestamp", "value"])),
    }
