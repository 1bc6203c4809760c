"""Helpers shared by the Dagster tests: resources bound to the test servers, and the expected
statistics computed independently, by PostgreSQL itself over the source table."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg2
from psycopg2 import sql

from wind_pipeline.defs.io_managers import PartitionedParquetIOManager
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource

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


def day_bounds(first: date, days: int = 1) -> tuple[datetime, datetime]:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return start, start + timedelta(days=days)


def expected_values(
    source_url: str, start: datetime, end: datetime, variables=VARIABLES
) -> dict[tuple[str, datetime], float]:
    """{(signal name, window start): value} by SQL aggregation over the source table."""
    windows = [
        start + timedelta(minutes=10 * i) for i in range(int((end - start) / timedelta(minutes=10)))
    ]
    expected: dict[tuple[str, datetime], float] = {}
    with psycopg2.connect(dsn(source_url)) as conn, conn.cursor() as cur:
        for variable in variables:
            column = sql.Identifier(variable)
            cur.execute(
                sql.SQL(
                    "SELECT date_bin('10 minutes', timestamp, timestamptz '2000-01-01 00:00Z'), "
                    "count({c}), avg({c}), min({c}), max({c}), stddev_samp({c}) FROM data "
                    "WHERE timestamp >= %s AND timestamp < %s GROUP BY 1"
                ).format(c=column),
                (start, end),
            )
            found = {row[0]: row[1:] for row in cur.fetchall()}
            for window in windows:
                count, mean, low, high, std = found.get(window, (0, None, None, None, None))
                expected[(f"{variable}_count", window)] = float(count)
                for name, value in (("mean", mean), ("min", low), ("max", high), ("std", std)):
                    if value is not None:
                        expected[(f"{variable}_{name}", window)] = float(value)
    return expected


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
