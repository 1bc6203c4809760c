"""Helpers shared by the Dagster tests: resources bound to the test servers, and the expected
statistics computed independently, by PostgreSQL itself over the source table."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2

from wind_pipeline.defs.io_managers import PartitionedParquetIOManager
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource
from wind_pipeline_tests.etl_checks import reference

VARIABLES = ("power", "wind_speed")
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def resources(api_url: str, target_url: str, storage: Path) -> dict:
    """The three resources of the code location, pointed at the test's servers and folder."""
    return {
        "connector_api": ConnectorApiResource(base_url=api_url, retries=0),
        "target_db": TargetDatabaseResource(url=target_url),
        "io_manager": PartitionedParquetIOManager(base_dir=str(storage)),
    }


def dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def expected_values(
    source_url: str, start: datetime, end: datetime, variables=VARIABLES
) -> dict[tuple[str, datetime], float]:
    """{(signal name, window start): value} by SQL aggregation over the source table."""
    days = (end - start) // timedelta(days=1)
    by_statistic = reference(source_url, start.date(), variables, days=days)
    return {
        (f"{variable}_{statistic}", window): float(value)
        for (variable, statistic, window), value in by_statistic.items()
    }


def target_values(
    target_url: str, start: datetime, end: datetime
) -> dict[tuple[str, datetime], float]:
    """{(signal name, window start): value} as stored in the target."""
    with psycopg2.connect(dsn(target_url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT s.name, d.timestamp, d.value FROM data d JOIN signal s ON s.id = d.signal_id "
            "WHERE d.timestamp >= %s AND d.timestamp < %s",
            (start, end),
        )
        return {(name, stamp): value for name, stamp, value in cur.fetchall()}


def target_row_count(target_url: str, start: datetime, end: datetime) -> int:
    with psycopg2.connect(dsn(target_url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM data WHERE timestamp >= %s AND timestamp < %s", (start, end)
        )
        return cur.fetchone()[0]


def assert_values_equal(actual: dict, expected: dict) -> None:
    """Same keys, and every value equal to floating-point accuracy."""
    assert actual.keys() == expected.keys(), (
        f"missing {sorted(expected.keys() - actual.keys())[:5]}, "
        f"unexpected {sorted(actual.keys() - expected.keys())[:5]}"
    )
    wrong = [
        (key, actual[key], expected[key])
        for key in expected
        if not math.isclose(actual[key], expected[key], rel_tol=1e-9, abs_tol=1e-9)
    ]
    assert not wrong, f"{len(wrong)} values differ, e.g. {wrong[:3]}"
