"""``dagster asset materialize`` as a user runs it: a subprocess, the repo's dagster.yaml,
Dagster's storage in PostgreSQL, the API over HTTP, configuration from the environment only."""

import os
import shutil
import subprocess
import sys
from datetime import date

import dagster as dg
import pytest
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_postgres.event_log import PostgresEventLogStorage

from wind_pipeline_tests.conftest import target_row_count
from wind_pipeline_tests.dagster_support import (
    DAGSTER,
    REPO,
    dagster_home,
    materialize,
    run_config_args,
)
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

FLEET = ("WTG01", "WTG02", "WTG03")


@pytest.fixture
def dagster_env(seed_source, serve_api, make_database, target_url, tmp_path) -> dict[str, str]:
    seed_source(days=4, turbines=3, faults=True)
    return {
        **dagster_home(tmp_path, make_database()),
        "CONNECTOR_API_URL": serve_api(),
        "TARGET_DATABASE_URL": target_url,
        "WIND_PIPELINE_START_DATE": "2024-01-01",
        "WIND_PIPELINE_STORAGE_DIR": str(tmp_path / "storage"),
    }


@pytest.mark.slow
def test_cli_materializes_a_fleet_partition_then_a_range_equal_to_the_sql_reference(
    dagster_env, source_url, target_url, tmp_path, monkeypatch
) -> None:
    single = materialize(dagster_env, "--partition", "2024-01-01")

    assert single.returncode == 0, single.stderr[-3000:]
    first = day_bounds(date(2024, 1, 1))
    assert_stats_equal(target_stats(target_url, *first), reference_stats(source_url, *first))
    assert target_row_count(target_url, *day_bounds(date(2024, 1, 2), days=3)) == 0

    ranged = materialize(dagster_env, "--partition-range", "2024-01-02...2024-01-04")

    assert ranged.returncode == 0, ranged.stderr[-3000:]
    every = day_bounds(date(2024, 1, 1), days=4)
    assert_stats_equal(target_stats(target_url, *every), reference_stats(source_url, *every))
    for day in ("2024-01-02", "2024-01-03", "2024-01-04"):
        assert (tmp_path / "storage" / "raw_readings" / f"{day}.parquet").exists()
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_env["DAGSTER_POSTGRES_URL"])
    with dg.DagsterInstance.from_config(dagster_env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        assert sorted(run.status.value for run in runs) == ["SUCCESS", "SUCCESS"]
        key = dg.AssetKey("signal_data")
        assert instance.get_materialized_partitions(key) == {f"2024-01-0{d}" for d in (1, 2, 3, 4)}
        # One check result per day, also inside the range run.
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("ten_minute_stats"), "rejected_share"), limit=10
        )
        assert sorted(record.partition for record in history) == [
            f"2024-01-0{d}" for d in (1, 2, 3, 4)
        ]


@pytest.mark.slow
def test_cli_run_config_turbines_limits_the_load(dagster_env, source_url, target_url) -> None:
    config = {"ops": {"raw_readings": {"config": {"turbines": ["WTG03"]}}}}

    result = materialize(dagster_env, "--partition", "2024-01-01", *run_config_args(config))

    assert result.returncode == 0, result.stderr[-3000:]
    start, end = day_bounds(date(2024, 1, 1))
    assert {t: target_row_count(target_url, start, end, turbine=t) > 0 for t in FLEET} == {
        "WTG01": False,
        "WTG02": False,
        "WTG03": True,
    }
    assert_stats_equal(
        target_stats(target_url, start, end),
        reference_stats(source_url, start, end, turbines=["WTG03"]),
    )


@pytest.mark.slow
def test_cli_names_a_missing_setting(dagster_env) -> None:
    env = {**dagster_env, "TARGET_DATABASE_URL": None}

    result = materialize(env, "--partition", "2024-01-01")

    assert result.returncode != 0
    assert "TARGET_DATABASE_URL" in result.stderr + result.stdout


def test_the_repo_dagster_yaml_stores_in_postgres_and_queues_one_run_per_partition(
    make_database, tmp_path, monkeypatch
) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", make_database())

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        # dagster-postgres' event log, less round trips that change nothing (instance.py)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        assert coordinator.get_run_queue_config().tag_concurrency_limits == [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]


@pytest.mark.slow
def test_workspace_yaml_loads_the_code_location(tmp_path) -> None:
    (tmp_path / "dagster.yaml").write_text("")  # default storage: this is about the workspace
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}

    result = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful for code location wind_pipeline" in result.stdout + result.stderr


def test_a_partition_of_linear_variables_never_imports_pandas(dagster_env) -> None:
    """pyarrow imports pandas from most of its constructors (0.3 s of a partition's 2.4 s):
    the assets keep to numpy-backed Arrow, and the direction checks skip when no variable is
    circular."""
    code = (
        "import sys, dagster as dg\n"
        "from wind_pipeline.definitions import defs\n"
        "keys = ('raw_readings', 'ten_minute_stats', 'signal_data')\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    result = dg.materialize([defs.get_assets_def(k) for k in keys],"
        " resources=defs.resources, instance=instance, partition_key='2024-01-02')\n"
        "print(result.success, 'pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **dagster_env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "False"]
