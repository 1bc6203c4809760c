"""The three assets end to end: the real API over HTTP, the real target PostgreSQL.

Target values are compared with PostgreSQL's own aggregation of the source table (date_bin,
avg, stddev_samp), an independent computation of what the pipeline must write.
"""

from datetime import date

import dagster as dg
import pytest

from wind_pipeline.defs.assets import (
    raw_readings,
    signal_data,
    ten_minute_stats,
    terminal_errors_fail_once,
)
from wind_pipeline.etl.errors import ApiUnavailableError, DatabaseError
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.dagster_support import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    assert_values_equal,
    expected_values,
    resources,
    target_row_count,
    target_values,
)
from wind_pipeline_tests.etl_checks import day_bounds

ASSETS = [raw_readings, ten_minute_stats, signal_data]
ROWS_PER_DAY = 144 * 5 * 2  # windows x statistics x variables, for a day with no gap


@pytest.fixture
def run_assets(seed_source, serve_api, source_url, target_url, tmp_path):
    """``run_assets(days=1, **materialize_kwargs)``: seed, then materialize on one instance."""
    instance = dg.DagsterInstance.ephemeral()
    api_url = serve_api()

    def run(**kwargs) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            resources=resources(api_url, target_url, tmp_path / "storage"),
            instance=instance,
            **kwargs,
        )

    run.instance = instance
    return run


def test_one_partition_writes_the_statistics_of_the_source(
    seed_source, run_assets, source_url, target_url, tmp_path
) -> None:
    seed_source(days=2)  # the next day too: the window must not spill into it

    result = run_assets(partition_key="2024-01-01")

    assert result.success
    start, end = day_bounds(DAY)
    assert_values_equal(
        target_values(target_url, start, end), expected_values(source_url, start, end)
    )
    assert target_row_count(target_url, *day_bounds(date(2024, 1, 2))) == 0
    (materialization,) = result.asset_materializations_for_node("signal_data")
    assert materialization.partition == "2024-01-01"
    assert materialization.metadata["rows_written"].value == ROWS_PER_DAY
    raw_metadata = result.asset_materializations_for_node("raw_readings")[0].metadata
    assert raw_metadata["row_count"].value == 1440
    assert raw_metadata["coverage_percent"].value == 100.0
    assert raw_metadata["first_timestamp"].value == "2024-01-01T00:00:00+00:00"
    assert raw_metadata["last_timestamp"].value == "2024-01-01T23:59:00+00:00"
    assert (tmp_path / "storage" / "ten_minute_stats" / "2024-01-01.parquet").exists()


def test_a_partition_range_is_one_run_with_a_materialization_per_day(
    seed_source, run_assets, source_url, target_url
) -> None:
    seed_source(days=3)

    result = run_assets(tags={RANGE_START_TAG: "2024-01-01", RANGE_END_TAG: "2024-01-03"})

    assert result.success
    start, end = day_bounds(DAY, days=3)
    assert_values_equal(
        target_values(target_url, start, end), expected_values(source_url, start, end)
    )
    days = {"2024-01-01", "2024-01-02", "2024-01-03"}
    for asset in ("raw_readings", "ten_minute_stats", "signal_data"):
        assert run_assets.instance.get_materialized_partitions(dg.AssetKey(asset)) == days
        records = run_assets.instance.fetch_materializations(dg.AssetKey(asset), limit=10).records
        assert {record.run_id for record in records} == {result.run_id}  # one run did it all
        assert len(records) == 3
    # Each day's materialization describes that day, not the whole range.
    raw_by_day = {
        m.partition: m.metadata for m in result.asset_materializations_for_node("raw_readings")
    }
    assert {day: meta["row_count"].value for day, meta in raw_by_day.items()} == dict.fromkeys(
        days, 1440
    )
    assert raw_by_day["2024-01-02"]["first_timestamp"].value == "2024-01-02T00:00:00+00:00"
    loaded = result.asset_materializations_for_node("signal_data")
    assert {m.partition: m.metadata["rows_written"].value for m in loaded} == dict.fromkeys(
        days, ROWS_PER_DAY
    )


def test_rematerializing_a_partition_leaves_one_copy_of_its_rows(
    seed_source, run_assets, target_url
) -> None:
    seed_source(days=1)

    assert run_assets(partition_key="2024-01-01").success
    assert run_assets(partition_key="2024-01-01").success

    assert target_row_count(target_url, *day_bounds(DAY)) == ROWS_PER_DAY


def test_run_config_chooses_the_variables(seed_source, run_assets, source_url, target_url) -> None:
    seed_source(days=1)
    config = {"ops": {"raw_readings": {"config": {"variables": ["ambient_temperature"]}}}}

    assert run_assets(partition_key="2024-01-01", run_config=config).success

    start, end = day_bounds(DAY)
    expected = expected_values(source_url, start, end, variables=("ambient_temperature",))
    assert_values_equal(target_values(target_url, start, end), expected)


def test_a_day_without_source_data_fails_once_with_a_clear_message(
    seed_source, run_assets, target_url
) -> None:
    seed_source(days=1)

    result = run_assets(partition_key="2024-01-05", raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no source data for 2024-01-05" in failure.step_failure_data.error.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert target_row_count(target_url, *day_bounds(date(2024, 1, 5))) == 0


def test_an_unknown_variable_fails_once_with_the_apis_message(seed_source, run_assets) -> None:
    seed_source(days=1)
    config = {"ops": {"raw_readings": {"config": {"variables": ["wind_speed", "rotor_rpm"]}}}}

    result = run_assets(partition_key="2024-01-01", run_config=config, raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert "rotor_rpm" in message
    assert "wind_speed" in message  # the API names what is allowed
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_allow_empty_writes_zero_counts(seed_source, run_assets, target_url) -> None:
    seed_source(days=1)
    config = {"ops": {"raw_readings": {"config": {"allow_empty": True}}}}

    assert run_assets(partition_key="2024-01-05", run_config=config).success

    values = target_values(target_url, *day_bounds(date(2024, 1, 5)))
    assert len(values) == 144 * 2  # only the count signals are defined, all zero
    assert set(values.values()) == {0.0}


def test_only_transient_errors_reach_the_retry_policy() -> None:
    with pytest.raises(ApiUnavailableError), terminal_errors_fail_once():
        raise ApiUnavailableError("down")
    with pytest.raises(dg.Failure) as failure, terminal_errors_fail_once():
        raise DatabaseError("refused", hint="check the URL")
    assert failure.value.allow_retries is False
    assert failure.value.description == "refused (check the URL)"
