"""Two overlapping range runs and a wind-etl of a day inside both, all at once.

Dagster's run queue limits runs per ``dagster/partition`` tag, which range runs do not carry
(they carry ``dagster/asset_partition_range_start``/``_end``), so nothing in Dagster keeps them
apart: the load's transaction-scoped advisory lock per (day, turbine) does. Each day's replace
(delete + COPY) runs under it, so whichever load comes last leaves exactly one whole copy; the
Parquet files they share are replaced atomically (a reader never sees half of one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from wind_pipeline_tests.dagster_support import DAGSTER, dagster_home, materialize_command
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

WIND_ETL = Path(sys.executable).with_name("wind-etl")


@pytest.mark.slow
def test_overlapping_range_runs_and_wind_etl_leave_one_copy_equal_to_the_reference(
    seed_source, serve_api, make_database, source_url, target_url, tmp_path
) -> None:
    from datetime import date

    seed_source(days=5, turbines=3, faults=True)
    api_url = serve_api()
    env = {
        **os.environ,
        **dagster_home(tmp_path, make_database()),
        "CONNECTOR_API_URL": api_url,
        "TARGET_DATABASE_URL": target_url,
        "WIND_PIPELINE_START_DATE": "2024-01-01",
        "WIND_PIPELINE_STORAGE_DIR": str(tmp_path / "storage"),
    }
    # Dagster's storage is created once, as a deployment's webserver or daemon does before any
    # run: two runs starting at the same instant on an empty database both try to create its
    # tables (dagster-postgres takes no lock for that), which is not the race under test here.
    subprocess.run(
        [str(DAGSTER), "instance", "info"],
        env=env,
        cwd=env["DAGSTER_HOME"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    commands = [
        materialize_command("--partition-range", "2024-01-01...2024-01-04"),
        materialize_command("--partition-range", "2024-01-02...2024-01-05"),
        [str(WIND_ETL), "2024-01-03", "--api-url", api_url, "--database-url", target_url],
    ]

    processes = [
        subprocess.Popen(
            command,
            env=env,
            cwd=env["DAGSTER_HOME"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]

    assert [p.returncode for p in processes] == [0, 0, 0], [o[-2000:] for o in outputs]
    start, end = day_bounds(date(2024, 1, 1), days=5)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )
    engine = sa.create_engine(target_url)
    with engine.connect() as conn:
        signals = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT (turbine, variable, statistic)) FROM signal")
        ).one()
        copies = conn.execute(
            sa.text(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM data "
                "GROUP BY signal_id, timestamp) AS per_key"
            )
        ).scalar_one()
    engine.dispose()
    assert signals == (3 * 2 * 6, 3 * 2 * 6)  # each signal once: 3 turbines x 2 variables x 6
    assert copies == 1
