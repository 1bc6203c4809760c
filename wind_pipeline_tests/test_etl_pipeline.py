"""The ETL core end to end: the real API over HTTP into the real target, against SQL's own stats."""

from datetime import date, timedelta

import pytest

from wind_pipeline.etl.client import ConnectorClient
from wind_pipeline.etl.db import DirectDatabase
from wind_pipeline.etl.errors import NoSourceDataError
from wind_pipeline.etl.pipeline import run_range
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.etl_checks import (
    assert_matches_reference,
    reference,
    source_row_count,
    target_row_count,
    target_values,
)

VARIABLES = ["wind_speed", "power"]


@pytest.mark.parametrize("faults", [False, True], ids=["clean", "faults"])
def test_a_day_through_the_api_matches_postgresql(
    faults, seed_source, serve_api, source_url, target_url, engine
):
    seed_source(days=1, faults=faults)
    with ConnectorClient(serve_api()) as client:
        (report,) = run_range(client, engine, DAY, DAY, VARIABLES)
    expected = reference(source_url, DAY, VARIABLES)
    assert_matches_reference(target_values(target_url), expected)
    assert report.day == DAY and report.windows == 144
    assert report.rows_written == len(expected)
    assert report.rows_read == source_row_count(source_url)
    assert (report.rows_read == 1440) != faults  # the faults remove minutes


def test_a_range_loads_every_day_with_one_fetch(
    seed_source, serve_api, source_url, target_url, engine
):
    seed_source(days=3, faults=True)
    fetched = []
    with ConnectorClient(serve_api()) as client:
        original = client.fetch
        client.fetch = lambda *a: fetched.append(a) or original(*a)
        reports = run_range(
            client, DirectDatabase(target_url), DAY, DAY + timedelta(days=2), VARIABLES
        )
    assert [r.day for r in reports] == [DAY + timedelta(days=i) for i in range(3)]
    assert len(fetched) == 1
    expected = reference(source_url, DAY, VARIABLES, days=3)
    assert sum(r.rows_written for r in reports) == len(expected) == target_row_count(target_url)
    assert_matches_reference(target_values(target_url), expected)


def test_an_empty_day_fails_before_anything_is_written(seed_source, serve_api, target_url, engine):
    seed_source(days=1)
    last = DAY + timedelta(days=2)
    with ConnectorClient(serve_api()) as client:
        with pytest.raises(NoSourceDataError, match="2024-01-02, 2024-01-03"):
            run_range(client, engine, DAY, last, VARIABLES)
        assert target_row_count(target_url) == 0

        reports = run_range(client, engine, DAY, last, VARIABLES, allow_empty=True)
    assert [r.rows_read for r in reports] == [1440, 0, 0]
    assert [r.rows_written for r in reports[1:]] == [144 * 2] * 2  # count = 0 for every window
    values = target_values(target_url)
    assert values[("power", "count", _midnight(last))] == 0.0


def _midnight(day: date):
    from wind_pipeline.etl.pipeline import day_start

    return day_start(day)
