"""The three assets of a daily partition: extract, transform, load, each a thin caller of the core.

A run covers one day or a range (``BackfillPolicy.single_run()``: a year is one run), and holds
one bounded slice of it at a time. Each asset yields its ``Output`` as a *lazy* iterable of
``(day, pa.Table)``: Dagster hands it to the IO manager's ``handle_output`` at once, which writes
each day's Parquet file as the iterable produces it, so the next day is fetched or computed only
after the previous one is on disk. Per-day metadata (``add_asset_metadata(partition_key=…)``) is
recorded while the days stream, and Dagster reads it only after ``handle_output`` returns, when it
writes each day's materialization. After the ``Output`` the asset yields one check result per day.

The work is the ETL core's (``wind_pipeline.etl``); this module adds what Dagster needs:
run configuration, retries, metadata and checks.
"""

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

from wind_pipeline.defs import checks
from wind_pipeline.defs.io_managers import StoredDays, split_days
from wind_pipeline.defs.metadata import (
    per_turbine_table,
    percent,
    plain_rows,
    preview,
    records_preview,
    time_span,
)
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource
from wind_pipeline.etl import quality
from wind_pipeline.etl.calendar import (
    MINUTES_PER_DAY,
    READINGS_PER_WINDOW,
    day_range,
    day_start,
)
from wind_pipeline.etl.catalogue import Variable
from wind_pipeline.etl.errors import TransientError
from wind_pipeline.etl.pipeline import (
    BLOCK_READINGS,
    blocks,
    days_per_block,
    refuse_empty_days,
    rows_per_day,
)
from wind_pipeline.etl.signals import DEFAULT_VARIABLES, STATISTICS, signal_name

GROUP = "wind"
# BackfillPolicy is a deliberate choice (a year is one run); its beta notice would otherwise be
# printed three times by every `dagster` command that loads this code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
SINGLE_RUN = dg.BackfillPolicy.single_run()
# On top of the client's and the load's own quick retries: an API or PostgreSQL restart or a
# network blip of a minute or so is ridden out (about 5, 10, 20, 40 s, with jitter so parallel
# runs do not retry in step). Only transient errors get here (``terminal_errors_fail_once``).
TRANSIENT_RETRY = dg.RetryPolicy(
    max_retries=4, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# The run's selection rides along in each day's Arrow schema (and so in its Parquet file): the
# transform needs every selected turbine (one without readings still gets its windows) and the
# catalogue's limits, the load needs the units, and both must be those the extract used.
SELECTION_KEY = b"wind_pipeline.selection"


class ExtractConfig(dg.Config):
    """Run configuration of ``raw_readings`` (the launchpad shows these with their defaults)."""

    variables: list[str] = Field(
        default_factory=lambda: list(DEFAULT_VARIABLES),
        description="Source variables to fetch; GET /variables on the API lists them.",
    )
    turbines: list[str] = Field(
        default_factory=list,
        description="Turbine ids to fetch (GET /turbines lists them); empty means all.",
    )
    allow_empty: bool = Field(
        default=False,
        description="Write zero counts for days with no source data instead of failing.",
    )
    block_readings: int = Field(
        default=BLOCK_READINGS,
        gt=0,
        description="Readings fetched per API request (whole days, at least one): what bounds "
        "a run's memory, whatever the range and the fleet (about 50 bytes a reading).",
    )


class TransformConfig(dg.Config):
    """Run configuration of ``ten_minute_stats``."""

    quality_control: bool = Field(
        default=True,
        description="Reject off-grid, out-of-range, frozen and spike readings (docs/rules.md); "
        "false gives the plain statistics with rejected = 0.",
    )
    max_rejected_percent: float = Field(
        default=5.0,
        description="The rejected_share check warns for a day above this share of rejected "
        "readings.",
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


def with_selection(
    table: pa.Table, turbines: Sequence[str], variables: Mapping[str, Variable]
) -> pa.Table:
    selection = {"turbines": list(turbines), "variables": [asdict(v) for v in variables.values()]}
    return table.replace_schema_metadata({SELECTION_KEY: json.dumps(selection)})


def selection_of(table: pa.Table) -> tuple[tuple[str, ...], dict[str, Variable]]:
    """The turbines and variables (with their limits) a stored day was extracted with."""
    stored = (table.schema.metadata or {}).get(SELECTION_KEY)
    if stored is None:
        raise ValueError(
            "this stored day has no selection in its schema: it was written by an older "
            "release; materialize raw_readings for it again"
        )
    selection = json.loads(stored)
    variables = {item["name"]: Variable(**item) for item in selection["variables"]}
    return tuple(selection["turbines"]), variables


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    group_name=GROUP,
    kinds={"fastapi", "pyarrow", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    check_specs=checks.RAW_READINGS_CHECKS,
    description="One-minute readings of the day(s) for the selected turbines, fetched from the "
    "connector API as Arrow, a Parquet file per day.",
)
def raw_readings(
    context: dg.AssetExecutionContext, config: ExtractConfig, connector_api: ConnectorApiResource
):
    from wind_pipeline.etl.catalogue import fetch_catalogue

    with terminal_errors_fail_once():
        catalogue = fetch_catalogue(connector_api.client)
        variables = catalogue.select_variables(config.variables)
        turbines = catalogue.select_turbines(config.turbines or None)
    limits = catalogue.limits(variables)
    results: list[dg.AssetCheckEvaluation] = []

    asked = None if turbines == catalogue.turbines else turbines  # a short URL for "all"

    def days() -> Iterator[tuple[str, pa.Table]]:
        # The core's blocks: about BLOCK_READINGS readings per request, whatever the fleet.
        size = days_per_block(len(turbines), config.block_readings)
        for block in blocks(context.partition_keys, size):
            raw = fetch_block(connector_api, block, variables, asked, config.allow_empty)
            for key, table in split_days(raw, block):
                day = with_selection(table, turbines, limits)
                context.add_asset_metadata(raw_metadata(day, len(turbines)), partition_key=key)
                checked = checks.raw_day(key, day, turbines, limits)
                results.extend(
                    [
                        checks.readings_complete(checked),
                        checks.readings_in_physical_range(checked),
                        checks.readings_not_frozen(checked),
                    ]
                )
                yield key, day

    yield dg.Output(days(), metadata={"turbines": len(turbines), "variables": list(variables)})
    yield from checks.check_events(context, results)


def fetch_block(
    connector_api: ConnectorApiResource,
    keys: list[str],
    variables: Sequence[str],
    turbines: Sequence[str] | None,
    allow_empty: bool,
) -> pa.Table:
    """The readings of consecutive days, refusing a day without any (unless ``allow_empty``)."""
    from wind_pipeline.etl.extract import extract

    days = [date.fromisoformat(key) for key in keys]
    with terminal_errors_fail_once():
        raw = extract(
            connector_api.client, day_start(days[0]), day_range(days[-1])[1], variables, turbines
        )
        if not allow_empty:
            refuse_empty_days(
                days,
                rows_per_day(raw, days),
                hint="or set allow_empty: true in the run config of raw_readings",
            )
    return raw


def raw_metadata(day: pa.Table, turbines: int) -> dict:
    """One day's readings: how many, how complete, a preview."""
    expected = MINUTES_PER_DAY * turbines
    variables = [name for name in day.column_names if name not in ("turbine_id", "timestamp")]
    return {
        "row_count": day.num_rows,
        "expected_rows": expected,
        "turbines": turbines,
        "coverage_percent": percent(day.num_rows, expected),
        "non_null_percent": {
            name: percent(day.num_rows - day.column(name).null_count, expected)
            for name in variables
        },
        **time_span(day),
        "preview": preview(day),
    }


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    group_name=GROUP,
    kinds={"pyarrow", "parquet"},
    check_specs=checks.TEN_MINUTE_STATS_CHECKS,
    description="mean, min, max, std, count and rejected of each variable per turbine and "
    "clock-aligned 10-minute UTC window, over the readings quality control keeps; every window "
    "of the day is present, empty ones with count 0.",
)
def ten_minute_stats(
    context: dg.AssetExecutionContext, config: TransformConfig, raw_readings: StoredDays
):
    from wind_pipeline.etl.transform import transform

    results: list[dg.AssetCheckEvaluation] = []

    def days() -> Iterator[tuple[str, pa.Table]]:
        for key, raw in raw_readings:
            turbines, limits = selection_of(raw)
            with terminal_errors_fail_once():
                result = transform(
                    raw,
                    *day_range(date.fromisoformat(key)),
                    turbines=turbines,
                    variables=limits,
                    qc=config.quality_control,
                )
            stats = with_selection(result.stats, turbines, limits)
            q = checks.quality_day(key, result.quality, turbines, tuple(limits))
            context.add_asset_metadata(
                stats_metadata(stats, q, config.quality_control), partition_key=key
            )
            results.extend(
                [
                    checks.windows_complete(key, stats, turbines, tuple(limits)),
                    checks.statistics_consistent(key, stats),
                    checks.rejected_share(q, config.max_rejected_percent),
                ]
            )
            yield key, stats

    yield dg.Output(days())
    yield from checks.check_events(context, results)


PER_TURBINE_COLUMNS = {
    "turbine": "string",
    "coverage_percent": "float",
    "rejected_percent": "float",
    "rejected": "int",
}


def stats_metadata(stats: pa.Table, q: checks.QualityDay, qc: bool) -> dict:
    """One day's windows and QC shares, as top-level numbers the UI plots over partitions."""
    from wind_pipeline.etl.arrays import to_numpy

    counts = to_numpy(stats.column("count"), np.int64)
    rejected, present = q.rejected, q.present
    shares = {
        f"rejected_percent_{variable}": percent(rejected[:, i].sum(), present[:, i].sum())
        for i, variable in enumerate(q.variables)
    }
    reasons = {
        f"rejected_percent_{quality.REASONS[status]}": percent(
            q.counts[:, :, status].sum(), present.sum()
        )
        for status in quality.REJECTED
    }
    expected = MINUTES_PER_DAY * len(q.variables)
    turbines = [
        {
            "turbine": turbine,
            "coverage_percent": percent(expected - q.counts[i, :, quality.MISSING].sum(), expected),
            "rejected_percent": percent(rejected[i].sum(), present[i].sum()),
            "rejected": int(rejected[i].sum()),
        }
        for i, turbine in enumerate(q.turbines)
    ]
    return {
        "row_count": stats.num_rows,
        "quality_control": qc,
        "rejected_percent": percent(rejected.sum(), present.sum()),
        **shares,
        **reasons,
        "windows_with_data_percent": percent((counts > 0).sum(), len(counts)),
        "full_windows_percent": percent((counts == READINGS_PER_WINDOW).sum(), len(counts)),
        "per_turbine": per_turbine_table(PER_TURBINE_COLUMNS, turbines),
        "preview": preview(stats),
    }


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    group_name=GROUP,
    kinds={"postgres"},
    retry_policy=TRANSIENT_RETRY,
    check_specs=checks.SIGNAL_DATA_CHECKS,
    description="The statistics in the target database (signal, data), replaced day by day and "
    "turbine by turbine in one transaction per day: re-running a day never duplicates its rows, "
    "and loading one turbine never touches another's.",
)
def signal_data(
    context: dg.AssetExecutionContext,
    ten_minute_stats: StoredDays,
    target_db: TargetDatabaseResource,
):
    from wind_pipeline.etl.load import load

    engine = target_db.engine
    results: list[dg.AssetCheckEvaluation] = []
    for key, stats in ten_minute_stats:
        turbines, limits = selection_of(stats)
        with terminal_errors_fail_once():
            written = load(engine, stats, limits)
            actual = checks.target_totals(engine, turbines, tuple(limits), key)
        rows = written.get(date.fromisoformat(key), 0)
        context.add_asset_metadata(signal_metadata(stats, rows), partition_key=key)
        results.append(checks.target_matches_stats(key, stats, actual))
    yield dg.MaterializeResult(metadata={"target": engine.url.render_as_string(hide_password=True)})
    yield from checks.check_events(context, results)


def signal_metadata(stats: pa.Table, rows_written: int) -> dict:
    """One day in the target: rows written, and a preview of them as stored (signal, value)."""
    first = plain_rows(stats.slice(0, 1))
    stored = [
        (
            signal_name(row["turbine_id"], row["variable"], statistic),
            row["timestamp"],
            row[statistic],
        )
        for row in first
        for statistic in STATISTICS
        if row[statistic] is not None
    ]
    return {
        "rows_written": rows_written,
        "defined_values_percent": percent(rows_written, stats.num_rows * len(STATISTICS)),
        **time_span(stats),
        "preview": records_preview(["signal", "timestamp", "value"], stored),
    }
