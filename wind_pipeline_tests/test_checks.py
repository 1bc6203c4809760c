"""Asset checks: pass on clean data, fail with counts on faulty data, block where they must."""

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from wind_pipeline.defs import checks
from wind_pipeline.defs.assets import raw_readings, signal_data, ten_minute_stats
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.etl.db import create_engine
from wind_pipeline.etl.load import load
from wind_pipeline.etl.schema import create_schema
from wind_pipeline.etl.transform import ten_minute_stats as compute_stats
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.dagster_support import resources, target_row_count
from wind_pipeline_tests.etl_checks import day_bounds

ALL_VARIABLES = ["ambient_temperature", "power", "wind_speed"]
ALL_VARIABLES_CONFIG = {"ops": {"raw_readings": {"config": {"variables": ALL_VARIABLES}}}}


@pytest.fixture
def materialize(serve_api, target_url, tmp_path):
    api_url = serve_api()

    def run(assets=(raw_readings, ten_minute_stats, signal_data), **kwargs):
        return dg.materialize(
            list(assets),
            resources=resources(api_url, target_url, tmp_path / "storage"),
            instance=dg.DagsterInstance.ephemeral(),
            partition_key="2024-01-01",
            run_config=ALL_VARIABLES_CONFIG,
            **kwargs,
        )

    return run


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_every_check_passes_on_clean_data(seed_source, materialize) -> None:
    seed_source(days=1)

    result = materialize()

    assert result.success
    found = evaluations(result)
    assert set(found) == {spec.name for spec in dg_check_specs()}
    assert all(e.passed for e in found.values()), {n: e.metadata for n, e in found.items()}
    assert found["readings_complete"].metadata["missing_rows"].value == 0
    assert found["windows_complete"].metadata["expected_windows_per_variable"].value == 144
    assert found["target_matches_stats"].metadata["target_rows"].value == 144 * 5 * 3


def test_source_faults_warn_with_counts_and_the_run_goes_on(
    seed_source, materialize, source_url, target_url
) -> None:
    seed_source(days=1, faults=True)
    start, end = day_bounds(DAY)
    rows = pd.read_sql(
        sa.text("SELECT * FROM data WHERE timestamp >= :s AND timestamp < :e ORDER BY timestamp"),
        create_engine(source_url),
        params={"s": start, "e": end},
    )

    result = materialize()

    assert result.success  # faults in the source warn, they do not block
    found = evaluations(result)
    for name in ("readings_complete", "readings_in_physical_range", "readings_not_frozen"):
        assert not found[name].passed
        assert found[name].severity == dg.AssetCheckSeverity.WARN
    complete = found["readings_complete"].metadata
    assert complete["missing_rows"].value == 1440 - len(rows)
    assert complete["null_readings"].value == {v: int(rows[v].isna().sum()) for v in ALL_VARIABLES}
    spikes = {"wind_speed": 99.0, "power": -500.0, "ambient_temperature": -99.0}
    assert found["readings_in_physical_range"].metadata["out_of_range"].value == {
        v: int((rows[v] == spikes[v]).sum()) for v in ALL_VARIABLES
    }
    assert sum(found["readings_not_frozen"].metadata["frozen_runs"].value.values()) >= 1
    # What the pipeline computes from faulty data is still consistent and fully loaded.
    for name in ("windows_complete", "statistics_consistent", "target_matches_stats"):
        assert found[name].passed
    assert target_row_count(target_url, start, end) > 0


def test_a_failing_blocking_check_stops_the_load(seed_source, materialize, target_url) -> None:
    seed_source(days=1)

    @dg.asset(
        name="ten_minute_stats",
        partitions_def=daily_partitions,
        check_specs=checks.TEN_MINUTE_STATS_CHECKS,
    )
    def stats_missing_a_window(context: dg.AssetExecutionContext, raw_readings: pd.DataFrame):
        start, end = context.partition_time_window
        stats = compute_stats(raw_readings, start, end, ALL_VARIABLES).iloc[1:]
        return dg.MaterializeResult(
            value=stats,
            check_results=[
                checks.windows_complete(stats, start, end, ALL_VARIABLES),
                checks.statistics_consistent(stats),
            ],
        )

    result = materialize(
        assets=(raw_readings, stats_missing_a_window, signal_data), raise_on_error=False
    )

    assert not result.success
    found = evaluations(result)
    assert not found["windows_complete"].passed
    assert found["windows_complete"].severity == dg.AssetCheckSeverity.ERROR
    assert found["windows_complete"].metadata["missing_windows"].value["ambient_temperature"] == 1
    assert not result.asset_materializations_for_node("signal_data")
    assert target_row_count(target_url, *day_bounds(DAY)) == 0


def test_inconsistent_statistics_are_counted_by_rule() -> None:
    start, end = day_bounds(DAY)
    stamps = pd.date_range(start, end, freq="1min", inclusive="left", unit="us")
    raw = pd.DataFrame({"timestamp": stamps, "power": [float(i % 97) for i in range(len(stamps))]})
    stats = compute_stats(raw, start, end, ["power"])
    assert checks.statistics_consistent(stats).passed

    stats.loc[0, "min"] = stats.loc[0, "max"] + 1  # min above mean
    stats.loc[1, "std"] = float("nan")  # std missing where count >= 2
    stats.loc[2, "count"] = 11
    result = checks.statistics_consistent(stats)

    assert not result.passed
    assert result.metadata["violations"].value == {
        "min_above_mean": 1,
        "mean_above_max": 0,
        "negative_std": 0,
        "count_out_of_0_10": 1,
        "nulls_not_matching_count": 1,
    }


def test_target_rows_differing_from_the_stats_fail_with_the_signals(target_url) -> None:
    start, end = day_bounds(DAY)
    stamps = pd.date_range(start, end, freq="1min", inclusive="left", unit="us")
    raw = pd.DataFrame({"timestamp": stamps, "wind_speed": [7.5] * len(stamps)})
    stats = compute_stats(raw, start, end, ["wind_speed"])
    engine = create_engine(target_url)
    create_schema(engine)
    load(engine, stats)
    assert checks.target_matches_stats(engine, stats, start, end).passed

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM data WHERE timestamp = :t AND signal_id = "
                "(SELECT id FROM signal WHERE name = 'wind_speed_mean')"
            ),
            {"t": start},
        )
    result = checks.target_matches_stats(engine, stats, start, end)
    engine.dispose()

    assert not result.passed
    assert result.metadata["expected_rows"].value == 144 * 5
    assert result.metadata["target_rows"].value == 144 * 5 - 1
    assert result.metadata["signals_differing"].value == 1
    assert "wind_speed_mean" in result.metadata["examples"].value


def test_frozen_runs_ignore_values_physics_holds_steady() -> None:
    start, _ = day_bounds(DAY)
    stamps = pd.date_range(start, periods=60, freq="1min", unit="us")
    power = [0.0] * 30 + [1234.5] * 12 + [float(i) for i in range(18)]
    raw = pd.DataFrame({"timestamp": stamps, "power": power})

    result = checks.readings_not_frozen(raw)

    assert not result.passed
    assert result.metadata["frozen_runs"].value == {"power": 1}  # 1234.5, not the 0 kW calm
    assert result.metadata["longest_run_minutes"].value == 12


def dg_check_specs() -> list[dg.AssetCheckSpec]:
    return checks.RAW_READINGS_CHECKS + checks.TEN_MINUTE_STATS_CHECKS + checks.SIGNAL_DATA_CHECKS
