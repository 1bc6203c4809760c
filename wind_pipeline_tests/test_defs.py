"""The code location loads, and holds every asset, check, job and schedule by name."""

from datetime import timedelta

import dagster as dg
import pytest

from wind_pipeline.definitions import defs
from wind_pipeline.defs.partitions import start_date_from_env


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


def test_every_definition_is_present_by_name() -> None:
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "scada_readings",
        "raw_readings",
        "ten_minute_stats",
        "signal_data",
    }
    assert {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys} == {
        ("raw_readings", "readings_complete"),
        ("raw_readings", "readings_in_physical_range"),
        ("raw_readings", "readings_not_frozen"),
        ("ten_minute_stats", "windows_complete"),
        ("ten_minute_stats", "statistics_consistent"),
        ("ten_minute_stats", "rejected_share"),
        ("ten_minute_stats", "circular_means_in_range"),
        ("ten_minute_stats", "circular_means_meaningful"),
        ("signal_data", "target_matches_stats"),
        ("signal_data", "default_partition_empty"),
    }
    assert repository.has_job("wind_etl_job")
    assert repository.has_schedule_def("wind_etl_daily")
    assert defs.get_schedule_def("wind_etl_daily").job_name == "wind_etl_job"
    assert repository.has_sensor_def("source_changes")
    assert repository.has_sensor_def("alert_on_run_failure")
    policy = graph.get(dg.AssetKey("signal_data")).freshness_policy
    assert policy.fail_window.to_timedelta() == timedelta(days=2)


def test_assets_are_grouped_partitioned_and_single_run_backfilled() -> None:
    for key in ("raw_readings", "ten_minute_stats", "signal_data"):
        asset = defs.get_assets_def(key)
        assert asset.group_names_by_key[dg.AssetKey(key)] == "wind"
        assert isinstance(asset.partitions_def, dg.DailyPartitionsDefinition)
        assert asset.partitions_def.timezone == "UTC"
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        assert asset.specs_by_key[dg.AssetKey(key)].description
    for key in ("raw_readings", "signal_data"):  # extract and load ride out a restart
        policy = defs.get_assets_def(key).op.retry_policy
        assert policy.max_retries >= 3
        assert policy.backoff == dg.Backoff.EXPONENTIAL
    assert defs.get_assets_def("ten_minute_stats").op.retry_policy is None


def test_every_check_has_one_result_per_day() -> None:
    for key in ("raw_readings", "ten_minute_stats", "signal_data"):
        for spec in defs.get_assets_def(key).check_specs:
            assert spec.partitions_def == defs.get_assets_def(key).partitions_def, spec.name
    blocking = {
        spec.name
        for key in ("raw_readings", "ten_minute_stats", "signal_data")
        for spec in defs.get_assets_def(key).check_specs
        if spec.blocking
    }
    assert blocking == {
        "windows_complete",
        "statistics_consistent",
        "circular_means_in_range",
        "target_matches_stats",
        "default_partition_empty",
    }


def test_the_job_runs_in_process() -> None:
    job = defs.get_job_def("wind_etl_job")
    assert job.executor_def is dg.in_process_executor
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {
        "raw_readings",
        "ten_minute_stats",
        "signal_data",
    }


def test_the_start_date_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("WIND_PIPELINE_START_DATE", raising=False)
    assert start_date_from_env() == "2024-01-01"
    monkeypatch.setenv("WIND_PIPELINE_START_DATE", "2023-06-15")
    assert start_date_from_env() == "2023-06-15"
    monkeypatch.setenv("WIND_PIPELINE_START_DATE", "15/06/2023")
    with pytest.raises(ValueError, match=r"'15/06/2023' is not a date; use the form YYYY-MM-DD"):
        start_date_from_env()
