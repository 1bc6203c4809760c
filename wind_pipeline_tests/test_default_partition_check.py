"""``default_partition_empty``: the target's DEFAULT partition stays empty, checked per day.

A row of a month without its partition lands in ``data_default``; there it blocks creating that
month's partition and escapes a month's ``prune``. The check counts it once per run and reports
the count for every day of the run, blocking.
"""

import dagster as dg
import sqlalchemy as sa

from wind_pipeline.defs.assets import raw_readings, signal_data, ten_minute_stats
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.dagster_support import range_tags, resources

DAYS = [DAY.isoformat(), "2024-01-02"]


def run_range(api_url: str, target_url: str, storage) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_readings, ten_minute_stats, signal_data],
        resources=resources(api_url, target_url, storage),
        instance=dg.DagsterInstance.ephemeral(),
        tags=range_tags(DAYS[0], DAYS[-1]),
        raise_on_error=False,
    )


def default_checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.partition: e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "default_partition_empty"
    }


def test_a_row_in_the_default_partition_fails_the_check_of_every_day(
    seed_source, serve_api, engine, target_url, tmp_path
):
    seed_source(days=2)
    api_url = serve_api()
    with engine.begin() as conn:  # 1990 has no partition: the row goes to DEFAULT
        conn.execute(
            sa.text("INSERT INTO data (signal_id, timestamp, value) VALUES (1, :t, 1.5)"),
            {"t": "1990-01-01T00:00:00Z"},
        )
        assert conn.execute(sa.text("SELECT count(*) FROM data_default")).scalar_one() == 1

    failed = run_range(api_url, target_url, tmp_path / "storage")

    assert not failed.success
    found = default_checks(failed)
    assert sorted(found) == DAYS
    for day, evaluation in found.items():
        assert not evaluation.passed
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.metadata["default_partition_rows"].value == 1
        assert f"{day}: 1 rows in the target's DEFAULT partition" in evaluation.description
    assert all(e.passed for e in failed.get_asset_check_evaluations() if e not in found.values())

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM data_default"))
    passed = run_range(api_url, target_url, tmp_path / "storage")

    assert passed.success
    found = default_checks(passed)
    assert sorted(found) == DAYS
    assert all(e.passed and e.metadata["default_partition_rows"].value == 0 for e in found.values())
