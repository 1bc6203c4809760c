"""The ``source_changes`` sensor end to end: the real API (its real ``GET /days``) over HTTP, a real
Dagster instance, the real target.

Four days of the sync window are loaded through Dagster; then late rows arrive for one turbine of
the first day, a reading of the third day is corrected and one of the fourth deleted. The sensor
requests exactly the changed days (the third and fourth as one range run), each request run in
process with its tags and run config leaves the target equal to the SQL reference, and with
nothing changed it requests nothing. The day whose checks warn posts one alert.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from wind_pipeline.defs.assets import raw_readings, signal_data, ten_minute_stats
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource
from wind_pipeline.defs.sensors import REASON_TAG, source_changes
from wind_pipeline.etl.alerts import WEBHOOK_VARIABLE
from wind_pipeline.etl.versions import day_version
from wind_pipeline_tests.dagster_support import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    range_tags,
    resources,
)
from wind_pipeline_tests.http_receiver import closed_port_url, receiver
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)
from wind_pipeline_tests.test_sync_cli import records, source_sql

ASSETS = [raw_readings, ten_minute_stats, signal_data]


def window_days():
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return [yesterday - timedelta(days=3 - i) for i in range(4)]


def evaluate(instance, api, target_url, cursor=None):
    bound = {
        "connector_api": ConnectorApiResource(base_url=api, retries=0),
        "target_db": TargetDatabaseResource(url=target_url),
    }
    with dg.build_sensor_context(instance=instance, resources=bound, cursor=cursor) as context:
        return source_changes(context)


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


def test_the_sensor_requests_exactly_the_changed_days_and_its_runs_match_the_reference(
    seed_source, serve_api, source_url, target_url, tmp_path, monkeypatch
):
    days = window_days()
    seed_source(start=days[0], days=4, turbines=3)
    source_sql(  # WTG02's 06:00-12:00 of the first day is buffered by its controller
        source_url,
        "CREATE TABLE held_back AS SELECT * FROM data WHERE turbine_id = 'WTG02' "
        "AND timestamp >= :a AND timestamp < :b; DELETE FROM data d USING held_back h "
        "WHERE d.turbine_id = h.turbine_id AND d.timestamp = h.timestamp",
        {"a": f"{days[0]} 06:00+00", "b": f"{days[0]} 12:00+00"},
    )
    api = serve_api()
    bound = resources(api, target_url, tmp_path / "storage")
    instance = dg.DagsterInstance.ephemeral()
    with receiver() as hook:
        monkeypatch.setenv(WEBHOOK_VARIABLE, hook.url + "/alerts")
        first = dg.materialize(
            ASSETS,
            resources=bound,
            instance=instance,
            tags=range_tags(days[0].isoformat(), days[-1].isoformat()),
        )
    assert first.success
    # The one day whose checks warn (WTG02's six missing hours) posted one alert.
    (alert,) = hook.requests
    assert alert.json() == {
        "text": f"wind_pipeline: checks warn for {days[0]} (run {first.run_id}): "
        "readings_complete 360"
    }
    loaded = records(target_url)
    assert len(loaded) == 12 and {run_id for *_, run_id in loaded.values()} == {first.run_id}

    idle = evaluate(instance, api, target_url)
    assert idle.run_requests == []

    source_sql(source_url, "INSERT INTO data SELECT * FROM held_back")
    source_sql(
        source_url,
        "UPDATE data SET wind_speed = 23.5 WHERE turbine_id = 'WTG01' AND timestamp = :at",
        {"at": f"{days[2]} 10:00+00"},
    )
    source_sql(
        source_url,
        "DELETE FROM data WHERE turbine_id = 'WTG03' AND timestamp = :at",
        {"at": f"{days[3]} 13:37+00"},
    )
    tick = evaluate(instance, api, target_url, cursor=idle.cursor)
    assert requested(tick) == [
        (days[0].isoformat(), days[0].isoformat(), ["WTG02"], "changed"),
        (days[2].isoformat(), days[3].isoformat(), ["WTG01", "WTG03"], "changed"),
    ]
    # Only the three moved days are observed again, each with its new version.
    assert sorted(o.partition for o in tick.asset_events) == [
        days[0].isoformat(),
        days[2].isoformat(),
        days[3].isoformat(),
    ]

    monkeypatch.delenv(WEBHOOK_VARIABLE)
    runs = []
    for request in tick.run_requests:
        run = dg.materialize(
            ASSETS,
            resources=bound,
            instance=instance,
            run_config=request.run_config,
            tags=request.tags,
        )
        assert run.success
        runs.append(run)
    after = records(target_url)
    reloaded = {key for key in after if after[key][2] != loaded[key][2]}
    assert reloaded == {
        (days[0], "WTG02"),
        (days[2], "WTG01"),
        (days[2], "WTG03"),
        (days[3], "WTG01"),
        (days[3], "WTG03"),
    }
    assert after[(days[0], "WTG02")][1] == 1440 and after[(days[0], "WTG02")][3] == runs[0].run_id
    start, end = day_bounds(days[0], 4)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )

    # signal_data's materialization names the version it loaded (of the turbines it loaded).
    (event,) = runs[0].get_asset_materialization_events()[-1:]
    metadata = event.materialization.metadata
    versions = {"WTG02": after[(days[0], "WTG02")][0]}
    assert metadata["source_versions"].value == versions
    assert metadata["source_version"].value == day_version(versions.items())

    assert evaluate(instance, api, target_url, cursor=tick.cursor).run_requests == []


def test_a_refused_webhook_leaves_the_run_successful(
    seed_source, serve_api, source_url, target_url, tmp_path, monkeypatch
):
    seed_source(days=1, turbines=1)
    source_sql(source_url, "DELETE FROM data WHERE timestamp < '2024-01-01 01:00+00'")
    monkeypatch.setenv(WEBHOOK_VARIABLE, closed_port_url())
    result = dg.materialize(
        ASSETS,
        resources=resources(serve_api(), target_url, tmp_path / "storage"),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="2024-01-01",
    )
    assert result.success  # the day warned, its alert was refused, the run went on
    warned = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert warned == {"readings_complete"}
