"""Independent reference for the ETL tests: the statistics as PostgreSQL computes them itself."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

REFERENCE_SQL = """
SELECT date_bin('10 minutes', "timestamp", TIMESTAMPTZ '2000-01-01 00:00:00+00') AS window,
       count({v}) AS count, avg({v}) AS mean, min({v}) AS min, max({v}) AS max,
       stddev_samp({v}) AS std
FROM data WHERE "timestamp" >= :start AND "timestamp" < :end
GROUP BY 1
"""
TARGET_SQL = """
SELECT s.variable, s.statistic, d."timestamp", d.value
FROM data d JOIN signal s ON s.id = d.signal_id
"""


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def day_bounds(day: date, days: int = 1) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=days)


def reference(source_url: str, day: date, variables, days: int = 1) -> dict:
    """{(variable, statistic, window): value} with every window of the days, as SQL sees them."""
    start, end = day_bounds(day, days)
    expected = {}
    with connect(source_url) as conn:
        for variable in variables:
            rows = conn.execute(
                sa.text(REFERENCE_SQL.format(v=variable)), {"start": start, "end": end}
            )
            found = {row.window: row for row in rows}
            for i in range(144 * days):
                window = start + timedelta(minutes=10 * i)
                row = found.get(window)
                count = row.count if row else 0
                expected[(variable, "count", window)] = float(count)
                for statistic in ("mean", "min", "max", "std"):
                    if count >= (2 if statistic == "std" else 1):
                        expected[(variable, statistic, window)] = getattr(row, statistic)
    return expected


def target_values(target_url: str) -> dict:
    with connect(target_url) as conn:
        return {
            (r.variable, r.statistic, r.timestamp): r.value
            for r in conn.execute(sa.text(TARGET_SQL))
        }


def target_row_count(target_url: str) -> int:
    with connect(target_url) as conn:
        return conn.execute(sa.text("SELECT count(*) FROM data")).scalar()


def assert_matches_reference(actual: dict, expected: dict) -> None:
    """Same keys; mean/min/max to 1e-12, std to 1e-9 (relative), counts exactly."""
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        statistic = key[1]
        tolerance = 1e-9 if statistic == "std" else 1e-12
        got = actual[key]
        assert math.isclose(got, want, rel_tol=tolerance, abs_tol=tolerance), (key, got, want)


def raw_from_source(source_url: str, day: date, variables, days: int = 1) -> pd.DataFrame:
    """Raw readings read straight from the source table (for load tests that skip the API)."""
    start, end = day_bounds(day, days)
    columns = ", ".join(variables)
    sql = f'SELECT "timestamp", {columns} FROM data WHERE "timestamp" >= :s AND "timestamp" < :e'
    sql += " ORDER BY 1"
    with connect(source_url) as conn:
        rows = conn.execute(sa.text(sql), {"s": start, "e": end}).all()
    frame = pd.DataFrame(rows, columns=["timestamp", *variables])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[us, UTC]")
    for variable in variables:
        frame[variable] = frame[variable].astype(np.float64)
    return frame


def source_row_count(source_url: str) -> int:
    with connect(source_url) as conn:
        return conn.execute(sa.text("SELECT count(*) FROM data")).scalar()
