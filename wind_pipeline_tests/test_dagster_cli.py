"""``dagster asset materialize`` as a user runs it: a subprocess, the repo's dagster.yaml,
Dagster's storage in PostgreSQL, the API over HTTP, configuration from the environment only."""

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.run_coordinator import QueuedRunCoordinator

from wind_pipeline_tests.dagster_support import dsn, target_row_count
from wind_pipeline_tests.etl_checks import day_bounds

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
ROWS_PER_DAY = 144 * 5 * 2


@pytest.fixture
def dagster_env(seed_source, serve_api, make_database, target_url, tmp_path) -> dict[str, str]:
    seed_source(days=3)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": make_database(),
        "CONNECTOR_API_URL": serve_api(),
        "TARGET_DATABASE_URL": target_url,
        "WIND_PIPELINE_START_DATE": "2024-01-01",
        "WIND_PIPELINE_STORAGE_DIR": str(tmp_path / "storage"),
    }


def materialize(env: dict[str, str], *selection: str) -> subprocess.CompletedProcess:
    command = [str(DAGSTER), "asset", "materialize", "-m", "wind_pipeline.definitions"]
    return subprocess.run(
        [*command, "--select", "*", *selection],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_cli_materializes_a_partition_then_a_range(dagster_env, target_url, tmp_path) -> None:
    single = materialize(dagster_env, "--partition", "2024-01-01")

    assert single.returncode == 0, single.stderr[-3000:]
    assert target_row_count(target_url, *day_bounds(date(2024, 1, 1), days=3)) == ROWS_PER_DAY

    ranged = materialize(dagster_env, "--partition-range", "2024-01-02...2024-01-03")

    assert ranged.returncode == 0, ranged.stderr[-3000:]
    for day in (date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)):
        assert target_row_count(target_url, *day_bounds(day)) == ROWS_PER_DAY
        assert (tmp_path / "storage" / "raw_readings" / f"{day.isoformat()}.parquet").exists()
    with psycopg2.connect(dsn(dagster_env["DAGSTER_POSTGRES_URL"])) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM runs")
        assert sorted(status for (status,) in cur.fetchall()) == ["SUCCESS", "SUCCESS"]
        cur.execute(
            "SELECT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
            "AND asset_key = '[\"signal_data\"]'"
        )
        assert sorted(p for (p,) in cur.fetchall()) == ["2024-01-01", "2024-01-02", "2024-01-03"]


@pytest.mark.slow
def test_cli_names_a_missing_setting(dagster_env) -> None:
    env = {k: v for k, v in dagster_env.items() if k != "TARGET_DATABASE_URL"}

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
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
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
