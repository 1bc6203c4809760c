"""``source_changes``: the sensor that keeps the target equal to the source, unattended.

Every ``WIND_PIPELINE_SYNC_INTERVAL_SECONDS`` (300) it runs the same compare as ``wind-etl sync``
(``etl/sync.py``) over ``WIND_PIPELINE_SYNC_LOOKBACK_DAYS`` (30) days ending yesterday and
requests one run of ``wind_etl_job`` per range of consecutive changed days: the range tags (a
run request is one run, whatever the assets' backfill policy), ``turbines`` = the range's changed
turbines, and the reasons in the ``wind/reason`` tag. A day whose run is queued or in progress is
left to that run and looked at again on the next tick. Each day whose source version moved is
recorded as an observation of ``scada_readings``.

It starts STOPPED, like the schedule: once on, it loads every source day of its window that the
target does not hold yet, which on a fresh target is a 30-day backfill that an operator should
choose to start (``dagster sensor start source_changes``, or Automation in the UI).

A request's run key is a digest of what it reloads (days, turbines, versions, rules): Dagster
never launches the same request twice, so a run that failed is not retried every tick for the
same versions (its failure alert names it; re-execute it from the UI), and any new change of
those days makes a new request.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from wind_pipeline.defs.alerts import RANGE_END_TAG, RANGE_START_TAG, run_partitions
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource
from wind_pipeline.defs.schedules import wind_etl_job
from wind_pipeline.defs.sources import SCADA_READINGS, day_versions, partition_window
from wind_pipeline.etl.record import LoadedRecord, RecordKey
from wind_pipeline.etl.sync import ChangedRange, changed_ranges, changes
from wind_pipeline.etl.versions import EMPTY, SourceDay

INTERVAL_VARIABLE = "WIND_PIPELINE_SYNC_INTERVAL_SECONDS"
DEFAULT_INTERVAL_SECONDS = 300
REASON_TAG = "wind/reason"
DATA_VERSION_TAG = "dagster/data_version"  # what Dagster reads an observation's version from
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def interval_seconds() -> int:
    """``WIND_PIPELINE_SYNC_INTERVAL_SECONDS`` (default 300), checked when the code loads."""
    raw = os.environ.get(INTERVAL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_SECONDS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{INTERVAL_VARIABLE}={raw!r} is not a whole number of seconds ≥ 1")
    return int(raw)


@dataclass(frozen=True)
class Tick:
    """What one evaluation decides: runs to request, observations to record, the new cursor."""

    run_requests: list[dg.RunRequest]
    observations: list[dg.AssetObservation]
    observed: dict[str, str] = field(default_factory=dict)  # day → version, the next cursor


def plan_tick(
    source: Sequence[SourceDay],
    records: Mapping[RecordKey, LoadedRecord],
    *,
    first: date,
    last: date,
    rules: str | Callable[[LoadedRecord], str],
    busy: set[date],
    observed: Mapping[str, str],
    variables: Callable[[ChangedRange], list[str]] | None = None,
) -> Tick:
    """The sensor's decision from its inputs alone (the seam the tests drive).

    ``busy`` days have a run queued or in progress and are not requested; ``observed`` is the
    version of each day last recorded (the cursor), so only days whose version moved are
    observed again. ``variables(range)``, when given, names the variables a range's run reloads
    (the assets' default otherwise).
    """
    found = changes(source, records, first=first, last=last, rules=rules)
    free = [change for change in found if change.day not in busy]
    requests = [
        run_request(changed, variables(changed) if variables else None)
        for changed in changed_ranges(free)
    ]
    window = {(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    rows: dict[str, list[SourceDay]] = {}
    for row in source:
        rows.setdefault(row.day.isoformat(), []).append(row)
    current = {day: v for day, v in day_versions(source).items() if day in window}
    # A day observed with readings that has none now (all retracted) is observed as empty.
    current.update({day: EMPTY for day in observed if day in window and day not in current})
    observations = [
        observation(day, version, rows.get(day, []))
        for day, version in sorted(current.items())
        if observed.get(day) != version
    ]
    cursor = current
    return Tick(requests, observations, cursor)


def run_request(changed: ChangedRange, variables: list[str] | None = None) -> dg.RunRequest:
    """One run of ``wind_etl_job`` over a range of changed days and their changed turbines,
    with ``variables`` (None: the assets' default)."""
    state = [
        changed.first.isoformat(),
        changed.last.isoformat(),
        variables,
        *[[c.day.isoformat(), c.turbine, c.reason, c.new_version] for c in changed.changes],
    ]
    extract = {"turbines": list(changed.turbines), "allow_empty": True}
    if variables is not None:
        extract["variables"] = variables
    key = hashlib.sha256(json.dumps(state).encode()).hexdigest()[:24]
    return dg.RunRequest(
        run_key=f"{changed.first.isoformat()}..{changed.last.isoformat()}:{key}",
        run_config={
            "ops": {
                # allow_empty: a retracted (day, turbine) has no readings left, and its reload
                # must write zero counts (and a record of zero readings) instead of failing.
                "raw_readings": {"config": extract}
            }
        },
        tags={
            RANGE_START_TAG: changed.first.isoformat(),
            RANGE_END_TAG: changed.last.isoformat(),
            REASON_TAG: ",".join(changed.reasons),
        },
    )


def observation(day: str, version: str, rows: Iterable[SourceDay]) -> dg.AssetObservation:
    rows = list(rows)
    return dg.AssetObservation(
        asset_key=SCADA_READINGS,
        partition=day,
        tags={DATA_VERSION_TAG: version},
        metadata={
            "turbines": len(rows),
            "readings": sum(row.readings for row in rows),
            "versions": dg.MetadataValue.json({row.turbine: row.version for row in rows}),
        },
    )


def busy_days(instance: dg.DagsterInstance) -> set[date]:
    """The days of every run queued or in progress (one partition or a range), whatever job."""
    days: set[date] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        span = [date.fromisoformat(key) for key in run_partitions(run.tags)]
        if span:
            days.update(span[0] + timedelta(days=i) for i in range((span[-1] - span[0]).days + 1))
    return days


@dg.sensor(
    name="source_changes",
    job=wind_etl_job,
    minimum_interval_seconds=interval_seconds(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Reloads the (day, turbine)s whose source readings changed, arrived late, were "
    "retracted or were computed under other quality rules (GET /days against loaded_day).",
)
def source_changes(
    context: dg.SensorEvaluationContext,
    connector_api: ConnectorApiResource,
    target_db: TargetDatabaseResource,
):
    from wind_pipeline.etl.reload import snapshot
    from wind_pipeline.etl.rules import record_rules, reload_variables

    window = partition_window(datetime.now(UTC).date())
    if window is None:
        return dg.SkipReason("no partition of the sync window has ended yet")
    first, last = window
    # The catalogue, GET /days and loaded_day read at once (as wind-etl sync reads them). Each
    # day is compared under the variables it was loaded with, with QC on (the assets' default);
    # a run reloads the default variables and any others its days hold (as wind-etl sync does).
    selection, source, records, described = snapshot(
        connector_api.client, target_db.engine, first, last, None, None
    )

    def variables(changed: ChangedRange) -> list[str]:
        held = [
            records[key].variables
            for c in changed.changes
            if (key := (c.day, c.turbine)) in records
        ]
        return reload_variables(selection.variables, held, described)

    observed = json.loads(context.cursor) if context.cursor else {}
    tick = plan_tick(
        source,
        records,
        first=first,
        last=last,
        rules=record_rules(described, True),
        busy=busy_days(context.instance),
        observed=observed,
        variables=variables,
    )
    return dg.SensorResult(
        run_requests=tick.run_requests,
        asset_events=tick.observations,
        cursor=json.dumps(tick.observed, sort_keys=True),
    )
