"""The generator against the real PostgreSQL: grid, determinism, physics, faults, re-seeding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg2
import pytest

from connector_api import db, generator
from connector_api.generator import VARIABLES, power_curve
from connector_api.schema import KNOWN_VARIABLES
from wind_pipeline_tests.conftest import DAY

MINUTES = 1440


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(db.libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def scalar(url: str, sql: str, params: tuple = ()):
    return query(url, sql, params)[0][0]


def utc(day, minutes: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes)


def test_days_give_exact_rows_on_a_one_minute_grid(seed_source, source_url):
    report = seed_source(days=3)

    assert report.rows_written == report.rows_generated == 3 * MINUTES
    assert (report.start, report.end) == (utc(DAY), utc(DAY + timedelta(days=3)))
    count, first, last, steps = query(
        source_url,
        "SELECT count(*), min(timestamp), max(timestamp),"
        " count(*) FILTER (WHERE step <> interval '1 minute')"
        " FROM (SELECT timestamp, timestamp - lag(timestamp) OVER (ORDER BY timestamp) AS step"
        "       FROM data) s",
    )[0]
    assert (count, first, last) == (3 * MINUTES, utc(DAY), utc(DAY, 3 * MINUTES - 1))
    assert query(source_url, "SELECT DISTINCT turbine_id FROM data") == [("WTG01",)]
    assert steps == 0
    assert (
        scalar(
            source_url,
            "SELECT count(*) FROM data WHERE timestamp <> date_trunc('minute', timestamp)",
        )
        == 0
    )


def test_same_seed_same_values_other_seed_differs():
    start, end = utc(DAY), utc(DAY, 2 * MINUTES)
    a, b = generator.generate(start, end, seed=7), generator.generate(start, end, seed=7)
    other = generator.generate(start, end, seed=8)
    assert a.equals(b) and a.num_rows == 2 * MINUTES
    assert not a.column("wind_speed").equals(other.column("wind_speed"))


def test_physical_ranges_without_faults(seed_source, source_url):
    seed_source(days=5)
    nulls, wind_min, wind_max, power_min, power_max, temp_min, temp_max = query(
        source_url,
        "SELECT count(*) FILTER (WHERE wind_speed IS NULL OR power IS NULL"
        "                         OR ambient_temperature IS NULL OR wind_direction IS NULL"
        "                         OR nacelle_position IS NULL),"
        " min(wind_speed), max(wind_speed), min(power), max(power),"
        " min(ambient_temperature), max(ambient_temperature) FROM data",
    )[0]
    assert nulls == 0
    assert wind_min >= 0 and wind_max <= 40
    assert -18 <= power_min < 0 and power_max == 3000  # idle self-consumption; rated power
    assert temp_min >= -40 and temp_max <= 50
    # self-consumption only while idle below cut-in, within -18 … -5 kW
    assert query(
        source_url,
        "SELECT count(*) FILTER (WHERE power < 0 AND wind_speed >= 3),"
        " count(*) FILTER (WHERE power < 0 AND (power < -18 OR power > -5)) FROM data",
    )[0] == (0, 0)
    for name in ("wind_direction", "nacelle_position"):
        low, high = query(source_url, f"SELECT min({name}), max({name}) FROM data")[0]
        assert low >= 0 and high < 360
    # a few days of a Weibull(2, 8) wind: mean near c·Γ(1.5) ≈ 7.1 m/s, allowing weather
    assert 3 < scalar(source_url, "SELECT avg(wind_speed) FROM data") < 12


def test_power_curve_shape():
    speeds = np.array([0, 2.9, 3, 5, 8, 11.9, 12, 18, 24.9, 25, 30])
    power = power_curve(speeds)
    np.testing.assert_allclose(power[[0, 1, 2]], 0.0)
    assert np.all(np.diff(power[2:6]) > 0)  # rising from cut-in to rated
    np.testing.assert_allclose(power[6:9], 3000.0)  # rated up to cut-out
    np.testing.assert_allclose(power[9:], 0.0)  # stopped above cut-out
    other = power_curve(speeds, rated_speed=11.0)  # a turbine's own curve
    assert other[5] == other[6] == 3000.0 and other[4] > power[4]


def test_seeded_power_follows_the_curve(seed_source, source_url):
    seed_source(days=10)
    bins = query(
        source_url,
        "SELECT floor(wind_speed)::int, avg(power), count(*) FROM data GROUP BY 1 ORDER BY 1",
    )
    means = {speed: mean for speed, mean, count in bins if count >= 30}
    rising = [means[s] for s in range(3, 12) if s in means]
    assert len(rising) >= 6 and rising == sorted(rising)
    assert all(means[s] < 10 for s in (0, 1, 2) if s in means)  # below cut-in
    assert all(means[s] > 2900 for s in range(13, 25) if s in means)  # rated
    assert all(mean < 10 for speed, mean, _ in bins if speed >= 25)  # cut-out, if it happened


def test_faults_inject_each_kind(seed_source, source_url):
    report = seed_source(days=4, faults=True)
    # the exact truth of each reading is checked in test_source_fleet.py
    assert report.rows_written == report.rows_generated < 4 * MINUTES

    missing_minutes = scalar(
        source_url,
        "SELECT count(*) FROM generate_series(%s::timestamptz,"
        " %s::timestamptz - interval '1 minute', interval '1 minute') AS m(t)"
        " LEFT JOIN data ON data.timestamp = m.t"
        " WHERE data.timestamp IS NULL",
        (utc(DAY), utc(DAY, 4 * MINUTES)),
    )
    assert missing_minutes == 4 * MINUTES - report.rows_written > 0

    null_run = max(longest_run(source_url, name, f"{name} IS NULL") for name in VARIABLES)
    assert null_run >= 5
    frozen = max(longest_run(source_url, name, f"{name} IS NOT NULL") for name in VARIABLES)
    assert frozen >= 10

    spikes = query(
        source_url,
        "SELECT count(*) FILTER (WHERE wind_speed > 40), count(*) FILTER (WHERE power < -150),"
        " count(*) FILTER (WHERE ambient_temperature < -40) FROM data",
    )[0]
    assert sum(spikes) >= 4 and sum(1 for n in spikes if n) >= 2
    in_range_spikes = 0
    for name, variable in KNOWN_VARIABLES.items():
        low, high, step = variable.physical_min, variable.physical_max, variable.max_step
        in_range_spikes += scalar(
            source_url,
            f"SELECT count(*) FROM (SELECT v, v - lag(v) OVER w AS up, v - lead(v) OVER w AS down"
            f" FROM (SELECT timestamp, {name} AS v FROM data) d WINDOW w AS (ORDER BY timestamp)) s"
            " WHERE v BETWEEN %s AND %s AND ((up > %s AND down > %s) OR (up < -%s AND down < -%s))",
            (low, high, step, step, step, step),
        )
    assert in_range_spikes >= 1


def longest_run(url: str, column: str, where: str) -> int:
    """The longest run of consecutive minutes with one value of ``column`` among rows ``where``."""
    return scalar(
        url,
        f"""
        SELECT coalesce(max(n), 0) FROM (
            SELECT count(*) AS n FROM (
                SELECT sum(new) OVER (ORDER BY timestamp) AS run FROM (
                    SELECT timestamp,
                           CASE WHEN v IS NOT DISTINCT FROM lag(v) OVER w
                                 AND timestamp - lag(timestamp) OVER w = interval '1 minute'
                                THEN 0 ELSE 1 END AS new
                    FROM (SELECT timestamp, {column} AS v FROM data WHERE {where}) d
                    WINDOW w AS (ORDER BY timestamp)
                ) flagged
            ) numbered GROUP BY run
        ) runs
        """,
    )


def test_reseeding_an_overlap_never_duplicates_and_agrees(seed_source, source_url):
    seed_source(days=3)
    before = query(
        source_url, "SELECT * FROM data WHERE timestamp >= %s ORDER BY 1", (utc(DAY, MINUTES),)
    )

    report = seed_source(start=DAY + timedelta(days=1), days=3)

    assert report.rows_generated == 3 * MINUTES and report.rows_written == MINUTES
    assert scalar(source_url, "SELECT count(*) FROM data") == 4 * MINUTES
    after = query(
        source_url,
        "SELECT * FROM data WHERE timestamp >= %s AND timestamp < %s ORDER BY 1",
        (utc(DAY, MINUTES), utc(DAY, 3 * MINUTES)),
    )
    assert after == before


def test_replace_overwrites_the_range(seed_source, source_url):
    seed_source(days=2)
    assert seed_source(days=2, faults=True).rows_written == 0  # insert-or-ignore keeps the old
    assert scalar(source_url, "SELECT count(*) FROM data") == 2 * MINUTES

    report = seed_source(days=2, faults=True, replace=True)

    assert scalar(source_url, "SELECT count(*) FROM data") == report.rows_written < 2 * MINUTES
    assert (
        scalar(
            source_url,
            "SELECT count(*) FROM data WHERE power IS NULL OR wind_speed IS NULL"
            " OR ambient_temperature IS NULL",
        )
        > 0
    )


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match="days must be at least 1"):
        generator.resolve_range(DAY, 0, None)
    with pytest.raises(ValueError, match="must be after start"):
        generator.resolve_range(DAY, 10, DAY)
