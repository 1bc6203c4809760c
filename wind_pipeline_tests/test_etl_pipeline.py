"""The ETL core end to end: the real API over HTTP into the real target, against the reference."""

from datetime import timedelta

import pytest

from wind_pipeline.etl import load as load_module
from wind_pipeline.etl import pipeline
from wind_pipeline.etl.client import ConnectorClient
from wind_pipeline.etl.db import DirectDatabase
from wind_pipeline.etl.errors import (
    DatabaseError,
    InvalidInputError,
    NoSourceDataError,
    TargetUnavailableError,
)
from wind_pipeline.etl.pipeline import days_per_block, run_range
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    source_row_count,
    target_row_count,
    target_stats,
)


def test_a_faulty_fleet_through_the_api_matches_the_reference(
    seed_source, serve_api, source_url, target_url, engine
):
    seed_source(days=2, turbines=3, faults=True)
    seen = []
    with ConnectorClient(serve_api()) as client:
        reports = run_range(client, engine, DAY, DAY + timedelta(days=1), on_day=seen.append)
    start, end = day_bounds(DAY, 2)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )
    assert seen == reports and [r.day for r in reports] == [DAY, DAY + timedelta(days=1)]
    assert all(r.turbines == 3 and r.windows == 3 * 144 for r in reports)
    assert sum(r.rows_read for r in reports) == source_row_count(source_url)
    assert sum(r.rows_written for r in reports) == target_row_count(target_url)
    assert sum(r.rejected for r in reports) > 0
    assert "3 turbines" in reports[0].summary()


def test_variables_and_turbines_are_normalised_once(
    seed_source, serve_api, source_url, target_url, engine
):
    seed_source(days=1, turbines=3)
    with ConnectorClient(serve_api()) as client:
        (report,) = run_range(
            client, engine, DAY, DAY, variables=[" power", "power"], turbines=["WTG03, WTG01"]
        )
        assert report.turbines == 2
        with pytest.raises(InvalidInputError, match=r"unknown turbine 'WTG07'.*WTG01, WTG02"):
            run_range(client, engine, DAY, DAY, turbines="WTG07")
        with pytest.raises(InvalidInputError, match="unknown variable 'gust'"):
            run_range(client, engine, DAY, DAY, variables="power,gust")
    start, end = day_bounds(DAY)
    expected = reference_stats(
        source_url, start, end, turbines=["WTG01", "WTG03"], variables=["power"]
    )
    assert_stats_equal(target_stats(target_url, start, end), expected)


def test_a_long_range_goes_in_bounded_blocks(
    seed_source, serve_api, source_url, target_url, engine
):
    seed_source(days=5, turbines=2)
    two_days = 2 * 1440 * 2  # readings of two days of two turbines
    assert pipeline.days_per_block(2, two_days) == 2
    fetched = []
    with ConnectorClient(serve_api()) as client:
        original = client.fetch
        client.fetch = lambda start, end, *a: (
            fetched.append((start, end)) or original(start, end, *a)
        )
        reports = run_range(
            client,
            DirectDatabase(target_url),
            DAY,
            DAY + timedelta(days=4),
            block_readings=two_days,
        )
    assert [(end - start).days for start, end in fetched] == [2, 2, 1]
    start, end = day_bounds(DAY, 5)
    assert len(reports) == 5
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )


def test_block_size_follows_the_fleet():
    assert days_per_block(1) == 138 and days_per_block(50) == 2 and days_per_block(1000) == 1


def test_an_empty_day_fails_before_its_block_writes(seed_source, serve_api, target_url, engine):
    seed_source(days=1)
    last = DAY + timedelta(days=2)
    with ConnectorClient(serve_api()) as client:
        with pytest.raises(NoSourceDataError, match="2024-01-02, 2024-01-03"):
            run_range(client, engine, DAY, last)
        assert target_row_count(target_url) == 0
        reports = run_range(client, engine, DAY, last, allow_empty=True)
    assert [r.rows_read for r in reports] == [1440, 0, 0]
    assert [r.rows_written for r in reports[1:]] == [144 * 2 * 2] * 2  # count, rejected = 0


def test_a_transient_target_failure_is_retried_and_a_terminal_one_not(
    seed_source, serve_api, source_url, target_url, engine, monkeypatch
):
    seed_source(days=2)
    real_load = load_module.load_day
    calls, sleeps = [], []

    def flaky(target, day, stats, **selection):
        calls.append(1)
        if len(calls) in (1, 2):
            raise TargetUnavailableError("server closed the connection unexpectedly")
        return real_load(target, day, stats, **selection)

    monkeypatch.setattr(pipeline, "load_day", flaky)
    with ConnectorClient(serve_api()) as client:
        reports = run_range(client, engine, DAY, DAY + timedelta(days=1), sleep=sleeps.append)
    assert [r.attempts for r in reports] == [3, 1] and len(sleeps) == 2
    start, end = day_bounds(DAY, 2)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )

    def broken(target, day, stats, **selection):
        calls.append(1)
        raise DatabaseError("permission denied for table data")

    calls.clear()
    monkeypatch.setattr(pipeline, "load_day", broken)
    with ConnectorClient(serve_api()) as client, pytest.raises(DatabaseError):
        run_range(client, engine, DAY, DAY, sleep=sleeps.append)
    assert len(calls) == 1  # never retried

    monkeypatch.setattr(
        pipeline, "load_day", lambda *a, **k: (_ for _ in ()).throw(TargetUnavailableError("down"))
    )
    with ConnectorClient(serve_api()) as client, pytest.raises(TargetUnavailableError):
        run_range(client, engine, DAY, DAY, target_retries=2, sleep=sleeps.append)
