"""The ``source_changes`` sensor: its decision from /days rows and records (the seam), the days
of runs in flight on a real instance, a whole evaluation with ``build_sensor_context``, and a run
of its request through the real assets.

The whole evaluation here reads the route's JSON contract from a plain HTTP server; the end-to-end
test against the real API and its real ``GET /days`` (late, corrected and deleted readings, the
sensor's request runs, the target equal to the SQL reference) is ``test_sensor_sync.py``.
"""

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from wind_pipeline.defs.assets import raw_readings, signal_data, ten_minute_stats
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource
from wind_pipeline.defs.sensors import (
    DATA_VERSION_TAG,
    REASON_TAG,
    busy_days,
    interval_seconds,
    plan_tick,
    source_changes,
)
from wind_pipeline.defs.sources import SCADA_READINGS, partition_window
from wind_pipeline.etl.record import LoadedRecord
from wind_pipeline.etl.versions import SourceDay, day_version
from wind_pipeline_tests.conftest import target_row_count
from wind_pipeline_tests.dagster_support import RANGE_END_TAG, RANGE_START_TAG, resources
from wind_pipeline_tests.http_receiver import receiver

D = [date(2026, 11, d) for d in range(1, 8)]
AT = datetime(2026, 12, 1, tzinfo=UTC)


def row(day, turbine, version):
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return SourceDay(day, turbine, 1440, start, start + timedelta(minutes=1439), version)


def record(day, turbine, version, rules="r"):
    return LoadedRecord(day, turbine, version, 1440, ("power",), True, rules, AT, None)


def loaded(rows):
    return {(r.day, r.turbine): record(r.day, r.turbine, r.version) for r in rows}


def tick(source, records, *, busy=(), observed=None):
    return plan_tick(
        source, records, first=D[0], last=D[-1], rules="r", busy=set(busy), observed=observed or {}
    )


def requested(result):
    return [
        (
            r.tags[RANGE_START_TAG],
            r.tags[RANGE_END_TAG],
            r.run_config["ops"]["raw_readings"]["config"]["turbines"],
            r.tags[REASON_TAG],
        )
        for r in result.run_requests
    ]


FLEET = ("WTG01", "WTG02", "WTG03")
SOURCE = [row(day, t, "v1") for day in D for t in FLEET]


def test_contiguous_changed_days_are_one_range_run_of_their_changed_turbines():
    records = loaded(SOURCE)
    source = list(SOURCE)
    source[3] = row(D[1], "WTG01", "v2")  # D2 WTG01 corrected
    source[7] = row(D[2], "WTG02", "v2")  # D3 WTG02 corrected
    source.remove(row(D[5], "WTG03", "v1"))  # D6 WTG03 retracted
    result = tick(source, records, observed={})
    assert requested(result) == [
        ("2026-11-02", "2026-11-03", ["WTG01", "WTG02"], "changed"),
        ("2026-11-06", "2026-11-06", ["WTG03"], "retracted"),
    ]
    config = result.run_requests[0].run_config["ops"]["raw_readings"]["config"]
    assert config["allow_empty"] is True
    # The same state gives the same run keys (Dagster launches a request once); a new version
    # of the same days gives new ones.
    again = tick(source, records)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in result.run_requests]
    source[3] = row(D[1], "WTG01", "v3")
    assert tick(source, records).run_requests[0].run_key != result.run_requests[0].run_key


def test_nothing_changed_requests_nothing_and_observes_only_moved_days():
    records = loaded(SOURCE)
    first = tick(SOURCE, records, observed={})
    assert first.run_requests == []
    assert [o.partition for o in first.observations] == [d.isoformat() for d in D]
    version = day_version([(t, "v1") for t in FLEET])
    assert first.observed == {d.isoformat(): version for d in D}
    obs = first.observations[0]
    assert obs.asset_key == SCADA_READINGS and obs.tags[DATA_VERSION_TAG] == version
    assert obs.metadata["turbines"].value == 3 and obs.metadata["readings"].value == 3 * 1440

    assert tick(SOURCE, records, observed=first.observed).observations == []
    gone = [r for r in SOURCE if r.day != D[4]]  # every reading of D5 retracted
    later = tick(gone, records, observed=first.observed)
    assert [(o.partition, o.tags[DATA_VERSION_TAG]) for o in later.observations] == [
        ("2026-11-05", "empty")
    ]
    assert tick(gone, records, observed=later.observed).observations == []


def test_a_day_with_a_run_in_flight_is_not_requested():
    source = [row(day, "WTG01", "v1") for day in D[:3]]
    result = tick(source, {}, busy={D[1]})
    assert [(s, e) for s, e, *_ in requested(result)] == [
        ("2026-11-01", "2026-11-01"),
        ("2026-11-03", "2026-11-03"),
    ]


EVENT_OF = {
    dg.DagsterRunStatus.QUEUED: dg.DagsterEventType.RUN_ENQUEUED,
    dg.DagsterRunStatus.STARTING: dg.DagsterEventType.RUN_STARTING,
    dg.DagsterRunStatus.STARTED: dg.DagsterEventType.RUN_START,
    dg.DagsterRunStatus.SUCCESS: dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterRunStatus.FAILURE: dg.DagsterEventType.RUN_FAILURE,
}


def job_origin():
    """Where the daemon would load ``wind_etl_job`` from: Dagster requires it of a queued run."""
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="wind_pipeline.definitions")
    )
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), "wind_etl_job")


def add_run(instance, status, tags):
    """A run in ``status``, moved there by the event Dagster itself records for it."""
    run = dg.DagsterRun(
        job_name="wind_etl_job",
        status=dg.DagsterRunStatus.NOT_STARTED,
        tags=tags,
        remote_job_origin=job_origin(),
    )
    instance.add_run(run)
    if status in EVENT_OF:
        event = dg.DagsterEvent(EVENT_OF[status].value, job_name="wind_etl_job")
        instance.report_dagster_event(event, run_id=run.run_id)
    assert instance.get_run_by_id(run.run_id).status == status
    return run


def test_busy_days_are_those_of_queued_and_running_runs_only():
    with dg.DagsterInstance.ephemeral() as instance:
        add_run(instance, dg.DagsterRunStatus.QUEUED, {"dagster/partition": "2026-11-01"})
        add_run(
            instance,
            dg.DagsterRunStatus.STARTED,
            {RANGE_START_TAG: "2026-11-03", RANGE_END_TAG: "2026-11-05"},
        )
        add_run(instance, dg.DagsterRunStatus.NOT_STARTED, {"dagster/partition": "2026-11-09"})
        add_run(instance, dg.DagsterRunStatus.SUCCESS, {"dagster/partition": "2026-11-10"})
        add_run(instance, dg.DagsterRunStatus.FAILURE, {"dagster/partition": "2026-11-11"})
        add_run(instance, dg.DagsterRunStatus.STARTED, {})  # unpartitioned
        assert busy_days(instance) == {date(2026, 11, d) for d in (1, 3, 4, 5, 9)}


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("WIND_PIPELINE_SYNC_INTERVAL_SECONDS", raising=False)
    assert interval_seconds() == 300
    monkeypatch.setenv("WIND_PIPELINE_SYNC_INTERVAL_SECONDS", "60")
    assert interval_seconds() == 60
    monkeypatch.setenv("WIND_PIPELINE_SYNC_INTERVAL_SECONDS", "soon")
    with pytest.raises(ValueError, match="WIND_PIPELINE_SYNC_INTERVAL_SECONDS"):
        interval_seconds()
    assert source_changes.minimum_interval_seconds == 300  # the default, read at load
    assert source_changes.default_status == dg.DefaultSensorStatus.STOPPED


VARIABLES = [
    {"name": "wind_speed", "unit": "m/s", "physical_min": 0, "physical_max": 60, "max_step": 15},
    {"name": "power", "unit": "kW", "physical_min": -50, "physical_max": 2500, "max_step": None},
]


def days_body(rows):
    return [
        {
            "day": r.day.isoformat(),
            "turbine_id": r.turbine,
            "readings": r.readings,
            "first_timestamp": r.first_timestamp.isoformat(),
            "last_timestamp": r.last_timestamp.isoformat(),
            "version": r.version,
        }
        for r in rows
    ]


def test_a_whole_evaluation_against_a_real_instance_and_target(engine, target_url):
    """Resources set up as in a tick, records read from the real target, the result's runs
    checked against the job, the cursor carried to the next tick."""
    first, last = partition_window(datetime.now(UTC).date())
    yesterday = last
    routes = {
        "/variables": VARIABLES,
        "/turbines": [{"id": "WTG01"}, {"id": "WTG02"}],
        "/days": days_body([row(yesterday, "WTG01", "v1"), row(yesterday, "WTG02", "v1")]),
    }
    with receiver(routes=routes) as api, dg.DagsterInstance.ephemeral() as instance:
        bound = {
            "connector_api": ConnectorApiResource(base_url=api.url, retries=0),
            "target_db": TargetDatabaseResource(url=target_url),
        }
        with dg.build_sensor_context(instance=instance, resources=bound) as context:
            result = source_changes(context)
        assert isinstance(result, dg.SensorResult)
        (request,) = result.run_requests
        assert request.tags[RANGE_START_TAG] == request.tags[RANGE_END_TAG] == last.isoformat()
        assert request.tags[REASON_TAG] == "new"
        config = request.run_config["ops"]["raw_readings"]["config"]
        assert config["turbines"] == ["WTG01", "WTG02"]
        assert [o.partition for o in result.asset_events] == [yesterday.isoformat()]
        assert list(json.loads(result.cursor)) == [yesterday.isoformat()]

        with dg.build_sensor_context(
            instance=instance, resources=bound, cursor=result.cursor
        ) as context:
            following = source_changes(context)
        assert following.asset_events == []  # nothing moved since
    days_asked = [r.path for r in api.requests if r.path.startswith("/days")]
    end = (last + timedelta(days=1)).isoformat()
    assert days_asked == [f"/days?start={first.isoformat()}&end={end}"] * 2


def test_a_request_of_the_sensor_runs_the_real_assets(seed_source, serve_api, target_url, tmp_path):
    """Its run config and range tags drive the real job: only the changed turbine is loaded."""
    seed_source(days=2, turbines=3)
    source = [row(date(2024, 1, d), t, "v1") for d in (1, 2) for t in FLEET]
    records = loaded(source)
    source[1] = row(date(2024, 1, 1), "WTG02", "v2")
    source[4] = row(date(2024, 1, 2), "WTG02", "v2")
    plan = plan_tick(
        source,
        records,
        first=date(2024, 1, 1),
        last=date(2024, 1, 2),
        rules="r",
        busy=set(),
        observed={},
    )
    (request,) = plan.run_requests
    result = dg.materialize(
        [raw_readings, ten_minute_stats, signal_data],
        resources=resources(serve_api(), target_url, tmp_path / "storage"),
        instance=dg.DagsterInstance.ephemeral(),
        run_config=request.run_config,
        tags=request.tags,
    )
    assert result.success
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)
    assert target_row_count(target_url, start, end, "WTG02") > 0
    assert target_row_count(target_url, start, end) == target_row_count(
        target_url, start, end, "WTG02"
    )


def test_observing_scada_readings_records_each_days_version():
    """ "Observe" in the UI: one observation per day of the window with readings."""
    from dagster._core.definitions.observe import observe  # Dagster 1.13 exports it no more

    from wind_pipeline.defs.sources import scada_readings

    _, last = partition_window(datetime.now(UTC).date())
    before = last - timedelta(days=1)
    rows = [row(before, "WTG01", "a"), row(last, "WTG01", "b"), row(last, "WTG02", "c")]
    with receiver(routes={"/days": days_body(rows)}) as api:
        result = observe(
            [scada_readings],
            instance=dg.DagsterInstance.ephemeral(),
            resources={"connector_api": ConnectorApiResource(base_url=api.url, retries=0)},
        )
    assert result.success
    seen = {
        e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation
        for e in result.get_asset_observation_events()
    }
    assert {day: o.tags[DATA_VERSION_TAG] for day, o in seen.items()} == {
        before.isoformat(): day_version([("WTG01", "a")]),
        last.isoformat(): day_version([("WTG01", "b"), ("WTG02", "c")]),
    }


def test_each_day_is_judged_under_its_own_variables_and_a_run_keeps_them():
    """A day loaded with more variables than the default is not "rules changed" for that, and
    the run reloading it after a change asks for every variable it held."""
    from wind_pipeline.etl.catalogue import Variable
    from wind_pipeline.etl.rules import record_rules, reload_variables, rules_digest

    described = {name: Variable(name) for name in ("wind_speed", "power", "wind_direction")}
    held = rules_digest(described, True)  # loaded with all three
    records = {
        (D[0], "WTG01"): LoadedRecord(
            D[0], "WTG01", "v1", 1440, tuple(described), True, held, AT, None
        )
    }
    rules = record_rules(described, True)

    def variables(changed):
        kept = [records[c.day, c.turbine].variables for c in changed.changes]
        return reload_variables(["wind_speed", "power"], kept, described)

    same = plan_tick([row(D[0], "WTG01", "v1")], records, first=D[0], last=D[-1], rules=rules,
                     busy=set(), observed={}, variables=variables)  # fmt: skip
    assert same.run_requests == []
    moved = plan_tick([row(D[0], "WTG01", "v2")], records, first=D[0], last=D[-1], rules=rules,
                      busy=set(), observed={}, variables=variables)  # fmt: skip
    (run,) = moved.run_requests
    extract = run.run_config["ops"]["raw_readings"]["config"]
    assert extract["variables"] == ["wind_speed", "power", "wind_direction"]
    assert extract["turbines"] == ["WTG01"]
