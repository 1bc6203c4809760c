"""The daily schedule asks for yesterday's partition, and that run request executes."""

from datetime import UTC, date, datetime

import dagster as dg
import pytest

from wind_pipeline.definitions import defs
from wind_pipeline_tests.conftest import target_row_count
from wind_pipeline_tests.dagster_support import ROWS_PER_TURBINE_DAY
from wind_pipeline_tests.reference import day_bounds


def requests_at(moment: datetime) -> list[dg.RunRequest]:
    schedule = defs.get_schedule_def("wind_etl_daily")
    context = dg.build_schedule_context(scheduled_execution_time=moment)
    return list(schedule.evaluate_tick(context).run_requests or [])


@pytest.mark.parametrize(
    ("moment", "partition"),
    [
        (datetime(2024, 1, 4, 0, 15, tzinfo=UTC), "2024-01-03"),
        (datetime(2024, 3, 1, 0, 15, tzinfo=UTC), "2024-02-29"),  # leap day
        (datetime(2025, 1, 1, 0, 15, tzinfo=UTC), "2024-12-31"),  # over the year's end
    ],
)
def test_the_schedule_requests_yesterday(moment: datetime, partition: str) -> None:
    (request,) = requests_at(moment)

    assert request.partition_key == partition


def test_the_schedule_ticks_at_a_quarter_past_midnight_utc() -> None:
    schedule = defs.get_schedule_def("wind_etl_daily")

    assert schedule.cron_schedule == "15 0 * * *"
    assert schedule.execution_timezone in (None, "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_the_requested_run_executes_with_the_code_locations_wiring(
    seed_source, serve_api, target_url, tmp_path, monkeypatch
) -> None:
    seed_source(days=3)
    monkeypatch.setenv("CONNECTOR_API_URL", serve_api())
    monkeypatch.setenv("TARGET_DATABASE_URL", target_url)
    monkeypatch.chdir(tmp_path)  # the default storage folder is relative to the working folder
    (request,) = requests_at(datetime(2024, 1, 3, 0, 15, tzinfo=UTC))

    result = defs.get_job_def("wind_etl_job").execute_in_process(
        partition_key=request.partition_key,
        tags=request.tags,
        instance=dg.DagsterInstance.ephemeral(),
    )

    assert result.success
    assert target_row_count(target_url, *day_bounds(date(2024, 1, 2))) == ROWS_PER_TURBINE_DAY
    assert target_row_count(target_url, *day_bounds(date(2024, 1, 1))) == 0
    assert (tmp_path / ".wind/storage/raw_readings/2024-01-02.parquet").exists()
