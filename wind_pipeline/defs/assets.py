"""The three assets of a daily partition: extract, transform, load, each a thin caller of the core.

A run covers one day or a range (a backfill is one range run, or runs of
``WIND_PIPELINE_BACKFILL_DAYS_PER_RUN`` days: ``defs/backfill.py``), and holds
one bounded slice of it at a time. Each asset yields its ``Output`` as a *lazy* iterable of
``(day, pa.Table)``: Dagster hands it to the IO manager's ``handle_output`` at once, which writes
each day's Parquet file as the iterable produces it, so a day is computed only after the
previous one is on disk; only waits overlap (``etl.ahead``): the next block is fetched while this
one is written, and two days load at once (the next one while this one is read back). Per-day
metadata (``add_asset_metadata(partition_key=…)``) is recorded while the days stream, and Dagster
reads it only after ``handle_output`` returns, when it writes each day's materialization. After
the ``Output`` the asset yields one check result per day.

The work is the ETL core's (``wind_pipeline.etl``); this module adds what Dagster needs:
run configuration, retries, metadata and checks.
"""

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date

import dagster as dg
import pyarrow as pa
from pydantic import Field

from wind_pipeline.defs import checks, directions
from wind_pipeline.defs.backfill import backfill_policy
from wind_pipeline.defs.io_managers import StoredDays
from wind_pipeline.defs.keys import GROUP
from wind_pipeline.defs.metadata import raw_metadata, signal_metadata, stats_metadata
from wind_pipeline.defs.partitions import daily_partitions, partition_days
from wind_pipeline.defs.provenance import (
    alert_warnings,
    day_record,
    last_warning_step,
    raw_source,
    stats_source,
    version_metadata,
    versions_by_day,
    with_source,
)
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource
from wind_pipeline.defs.sources import SCADA_READINGS
from wind_pipeline.etl import audit
from wind_pipeline.etl.ahead import ahead, at_once
from wind_pipeline.etl.arrays import release_freed_memory
from wind_pipeline.etl.errors import TransientError
from wind_pipeline.etl.extract import BLOCK_READINGS
from wind_pipeline.etl.load import DAYS_AT_ONCE
from wind_pipeline.etl.pipeline import (
    Selection,
    extract_days,
    load_day,
    select,
    transform_days,
)
from wind_pipeline.etl.reload import source_days
from wind_pipeline.etl.signals import DEFAULT_VARIABLES

# BackfillPolicy is a deliberate choice (a year is one run); its beta notice would otherwise be
# printed three times by every `dagster` command that loads this code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
# One object for all three assets: Dagster groups a backfill's assets by policy, so different
# ones would split a day's three steps into separate runs. Read once, when the code loads.
BACKFILL_POLICY = backfill_policy()
# On top of the client's own quick retries of a request: an API or PostgreSQL restart or a
# network blip of a minute or so is ridden out (about 5, 10, 20, 40 s, with jitter so parallel
# runs do not retry in step); days already loaded stay, each being its own transaction. Only
# transient errors get here (``terminal_errors_fail_once``).
TRANSIENT_RETRY = dg.RetryPolicy(
    max_retries=4, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# The run's selection rides along in each day's Arrow schema (and so in its Parquet file): the
# transform needs every selected turbine (one without readings still gets its windows) and the
# catalogue's limits, the load needs the turbines it replaces and the units, and all must be
# those the extract used.
SELECTION_KEY = b"wind_pipeline.selection"


class ExtractConfig(dg.Config):
    """Run configuration of ``raw_readings`` (the launchpad shows these with their defaults)."""

    variables: list[str] = Field(
        default_factory=lambda: list(DEFAULT_VARIABLES),
        description="Variables to load (GET /variables on the API lists them; yaw_error is "
        'derived from wind_direction and nacelle_position, both fetched for it), or ["all"] '
        "for every one of them.",
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
        description="Reject off-grid, out-of-range, frozen and spike readings (README, Data "
        "quality); false gives the plain statistics with rejected = 0.",
    )
    max_rejected_percent: float = Field(
        default=5.0,
        description="The rejected_share check warns for a day above this share of rejected "
        "readings.",
    )
    max_wide_percent: float = Field(
        default=directions.MAX_WIDE_PERCENT,
        description="The circular_means_meaningful check warns for a turbine whose day has more "
        "than this share of a direction's windows spread over 180° around their mean.",
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


def with_selection(table: pa.Table, selection: Selection) -> pa.Table:
    return table.replace_schema_metadata({SELECTION_KEY: selection.to_json()})


def selection_of(table: pa.Table) -> Selection:
    """The selection (turbines, variables with their limits) a stored day was extracted with."""
    stored = (table.schema.metadata or {}).get(SELECTION_KEY)
    if stored is None:
        raise ValueError(
            "this stored day has no selection in its schema: it was written by an older "
            "release; materialize raw_readings for it again"
        )
    return Selection.from_json(stored)


def stored_days(days: list[date], stored: StoredDays) -> Iterator[tuple[date, pa.Table]]:
    """The upstream asset's days paired with the run's dates: the IO manager reads the same
    partition range in the same order, so its keys are only compared, never parsed."""
    for day, (key, table) in zip(days, stored, strict=True):
        if key != day.isoformat():
            raise ValueError(f"stored day {key} read where {day.isoformat()} was expected")
        yield day, table


def as_keys(days: Iterable[tuple[date, pa.Table]]) -> Iterator[tuple[str, pa.Table]]:
    """``(partition key, table)`` as the IO manager stores them: dates become keys here only."""
    for day, table in days:
        yield day.isoformat(), table


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name=GROUP,
    kinds={"fastapi", "pyarrow", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    check_specs=checks.RAW_READINGS_CHECKS,
    deps=[SCADA_READINGS],
    description="One-minute readings of the day(s) for the selected turbines, fetched from the "
    "connector API as Arrow, a Parquet file per day.",
)
def raw_readings(
    context: dg.AssetExecutionContext, config: ExtractConfig, connector_api: ConnectorApiResource
):
    client = connector_api.client
    run_days = partition_days(context)
    with terminal_errors_fail_once():
        selection = select(client, config.variables, config.turbines or None)
        # The source's versions before the extract (defs/provenance.py says why).
        sources = versions_by_day(source_days(client, run_days[0], run_days[-1], selection.asked))
    alerts_here = last_warning_step(context, checks.TEN_MINUTE_STATS)
    results: list[dg.AssetCheckEvaluation] = []

    def days() -> Iterator[tuple[date, pa.Table]]:
        blocks = ahead(  # the next block fetched while this one is written
            extract_days(
                client,
                run_days,
                selection,
                allow_empty=config.allow_empty,
                block_readings=config.block_readings,
                empty_hint="or set allow_empty: true in the run config of raw_readings",
            ),
            between=release_freed_memory,
        )
        while True:
            with terminal_errors_fail_once():
                block = next(blocks, None)
            if block is None:
                return
            for day, table in block.by_day():
                stored = with_selection(table, selection)
                metadata = raw_metadata(stored, len(selection.turbines))
                context.add_asset_metadata(metadata, partition_key=day.isoformat())
                counted = audit.raw_counts(stored, selection.turbines, selection.limits)
                found = [
                    checks.readings_complete(day, counted),
                    checks.readings_in_physical_range(day, counted),
                    checks.readings_not_frozen(day, counted),
                ]
                results.extend(found)
                stored = with_source(stored, raw_source(sources, day, found))
                if alerts_here:
                    alert_warnings(day, raw_source(sources, day, found)["warnings"], context.run_id)
                yield day, stored

    metadata = {"turbines": len(selection.turbines), "variables": list(selection.variables)}
    yield dg.Output(as_keys(days()), metadata=metadata)
    yield from checks.check_events(context, results)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
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
    results: list[dg.AssetCheckEvaluation] = []
    qc = config.quality_control

    def days() -> Iterator[tuple[date, pa.Table]]:
        for day, raw in stored_days(partition_days(context), raw_readings):
            selection = selection_of(raw)
            with terminal_errors_fail_once():
                result = transform_days(raw, [day], selection, qc=qc)
            stats = with_selection(result.stats, selection)
            q = audit.quality_counts(result.quality, selection.turbines, selection.variables)
            metadata = stats_metadata(stats, q, qc) | directions.yaw_metadata(stats, selection)
            context.add_asset_metadata(metadata, partition_key=day.isoformat())
            found = [
                checks.windows_complete(day, stats, selection.turbines, selection.variables),
                checks.statistics_consistent(day, stats, qc=qc),
                checks.rejected_share(day, q, config.max_rejected_percent),
                *directions.evaluations(day, stats, selection, config.max_wide_percent),
            ]
            results.extend(found)
            stats, warnings = stats_source(raw, stats, qc, found)
            alert_warnings(day, warnings, context.run_id)  # the day's one alert, if it warns
            yield day, stats

    yield dg.Output(as_keys(days()))
    yield from checks.check_events(context, results)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
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
    engine = target_db.engine
    run_id, run_days = context.run_id, partition_days(context)  # read here, not in the thread
    results: list[dg.AssetCheckEvaluation] = []

    def load(stored: tuple[date, pa.Table]) -> tuple[date, pa.Table, Selection, int]:
        day, stats = stored
        selection = selection_of(stats)
        record = day_record(stats, day, selection, run_id)  # loaded_day, same transaction
        with terminal_errors_fail_once():
            rows = load_day(
                engine,
                day,
                stats,
                turbines=selection.turbines,
                variables=selection.limits,
                within=None if record is None else record.write,
            )
        return day, stats, selection, rows

    # Two days load at once while this thread waits; the next one while it reads a day back.
    days = stored_days(run_days, ten_minute_stats)
    loaded = at_once(load, days, calls=DAYS_AT_ONCE, between=release_freed_memory)
    for day, stats, selection, rows in loaded:
        with terminal_errors_fail_once():
            actual = checks.target_totals(engine, selection.turbines, selection.variables, day)
        metadata = {**signal_metadata(stats, selection, rows), **version_metadata(stats)}
        context.add_asset_metadata(metadata, partition_key=day.isoformat())
        results.append(checks.target_matches_stats(day, stats, actual))
    with terminal_errors_fail_once():
        in_default = checks.default_partition_rows(engine)
    results.extend(checks.default_partition_empty(d, in_default) for d in run_days)
    yield dg.MaterializeResult(metadata={"target": engine.url.render_as_string(hide_password=True)})
    yield from checks.check_events(context, results)
