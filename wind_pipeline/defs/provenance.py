"""Where a day came from, carried with the day from ``raw_readings`` down to ``signal_data``.

``raw_readings`` reads ``GET /days`` for its days *before* it extracts them, and stores each day's
source versions and readings per turbine in the day's Arrow schema metadata (beside the run's
selection, and so in its Parquet file); ``ten_minute_stats`` adds its QC setting and the counts of
the day's warning checks; ``signal_data`` writes the day's ``loaded_day`` records from them, with
the run id, in the day's own transaction, and names the version it loaded in its metadata. A
reading that lands between ``/days`` and the extract is in the rows but not in the recorded
version: the sensor reloads that day once more, never misses it (README, "Late and corrected
readings").

Why in the table and not in run config or a resource: a day re-executed from its stored Parquet
file (a retry of ``signal_data`` alone) must record the versions its rows were extracted under.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import dagster as dg
import pyarrow as pa

from wind_pipeline.etl.pipeline import Selection
from wind_pipeline.etl.record import DayRecord
from wind_pipeline.etl.reload import by_day
from wind_pipeline.etl.rules import rules_digest
from wind_pipeline.etl.versions import SourceDay, day_version

SOURCE_KEY = b"wind_pipeline.source"
# What each warning check counted, for the day's one alert: the metadata entry that holds it.
WARNING_COUNTS = {
    "readings_complete": "missing_rows",
    "readings_in_physical_range": "out_of_range_total",
    "readings_not_frozen": "frozen_readings_total",
    "rejected_share": "rejected_readings",
}


def versions_by_day(rows: Iterable[SourceDay]) -> dict[date, dict[str, Any]]:
    """``GET /days`` rows as each day's ``{"versions": {turbine: v}, "readings": {turbine: n}}``."""
    return {
        day: {"versions": versions, "readings": readings}
        for day, (versions, readings) in by_day(rows).items()
    }


def source_of(table: pa.Table) -> dict[str, Any] | None:
    """The day's source record as stored with it; None for a day stored by an older release."""
    stored = (table.schema.metadata or {}).get(SOURCE_KEY)
    return None if stored is None else json.loads(stored)


def with_source(table: pa.Table, source: Mapping[str, Any]) -> pa.Table:
    """``table`` with ``source`` added to its schema metadata (the selection kept)."""
    metadata = dict(table.schema.metadata or {})
    metadata[SOURCE_KEY] = json.dumps(source, sort_keys=True).encode()
    return table.replace_schema_metadata(metadata)


def carried(upstream: pa.Table, table: pa.Table, **more: Any) -> pa.Table:
    """``table`` with ``upstream``'s source record and ``more`` fields; as is when it has none."""
    source = source_of(upstream)
    return table if source is None else with_source(table, {**source, **more})


def day_record(table: pa.Table, day: date, selection: Selection, run_id: str) -> DayRecord | None:
    """The ``loaded_day`` records of ``day`` from its stored source record; None without one
    (the day was extracted by an older release: the next sync finds it unrecorded and reloads)."""
    source = source_of(table)
    if source is None:
        return None
    qc = bool(source.get("quality_control", True))
    return DayRecord(
        day,
        selection.turbines,
        source["versions"],
        source["readings"],
        selection.variables,
        qc,
        rules_digest(selection.limits, qc),
        run_id,
    )


def version_metadata(table: pa.Table) -> dict[str, Any]:
    """What ``signal_data`` shows of the version it loaded: the day's, and each turbine's."""
    source = source_of(table)
    if source is None:
        return {}
    versions = source["versions"]
    return {
        "source_version": day_version(versions.items()),
        "source_versions": dg.MetadataValue.json(versions),
        "source_readings": sum(source["readings"].values()),
    }


def warning_counts(evaluations: Iterable[dg.AssetCheckEvaluation]) -> dict[str, int]:
    """Each failed WARN check of the day with what it counted (e.g. ``missing_rows``)."""
    counts: dict[str, int] = {}
    for found in evaluations:
        if found.passed or found.severity != dg.AssetCheckSeverity.WARN:
            continue
        entry = found.metadata.get(WARNING_COUNTS.get(found.check_name, ""))
        value = getattr(entry, "value", entry)
        counts[found.check_name] = int(value) if isinstance(value, int | float) else 1
    return counts


def raw_source(
    sources: Mapping[date, Mapping[str, Any]], day: date, checks: Iterable[dg.AssetCheckEvaluation]
) -> dict[str, Any]:
    """What ``raw_readings`` stores of ``day``: its ``/days`` versions and readings (none: the
    source held nothing of it) and the counts of its warning checks."""
    found = sources.get(day, {"versions": {}, "readings": {}})
    return {**found, "warnings": warning_counts(checks)}


def stats_source(
    raw: pa.Table, stats: pa.Table, qc: bool, checks: Iterable[dg.AssetCheckEvaluation]
) -> tuple[pa.Table, dict[str, int]]:
    """``stats`` carrying ``raw``'s source record and the QC setting, and the day's warnings:
    ``raw_readings``' and this step's, for the day's one alert."""
    upstream = source_of(raw) or {}
    warnings = {**upstream.get("warnings", {}), **warning_counts(checks)}
    return carried(raw, stats, quality_control=qc, warnings=warnings), warnings


def alert_warnings(day: date, warnings: Mapping[str, int], run_id: str) -> None:
    """One webhook POST for a day whose checks warn (never raises; nothing when unset)."""
    from wind_pipeline.etl.alerts import warn_alert

    if warnings:
        warn_alert(day, warnings, run_id=run_id)


def last_warning_step(context: dg.AssetExecutionContext, downstream: dg.AssetKey) -> bool:
    """Whether this step posts the day's warning alert: ``raw_readings`` does only in a run
    without ``ten_minute_stats``, which otherwise posts the day's one alert with both steps'
    warnings."""
    return downstream not in context.job_def.asset_layer.selected_asset_keys
