"""Directions on the circle (README "Directions"): QC with wrapped differences, circular
statistics and the yaw error, against the SQL reference (``reference.py``), on hand-made cases
and a faulty day.

The source database here has the direction columns, and the catalogue is the one ``GET /variables``
serves once the directions land, built by hand: the SQL reads its rules (bounds, ``max_step``,
``kind``, ``frozen_minutes``, ``frozen_exempt``) from it, the pipeline judges by the same
``Variable``s, and the two share no code.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from wind_pipeline.etl import circular
from wind_pipeline.etl.catalogue import Variable, with_derived
from wind_pipeline.etl.transform import transform
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    raw_from_source,
    reference_stats,
    reference_status,
    rows_from_stats,
)

D0 = datetime(2024, 1, 1, tzinfo=UTC)
END = D0 + timedelta(days=1)
TURBINE = "WTG01"
DIRECTIONS = ("wind_direction", "nacelle_position")
OUTPUT = (*DIRECTIONS, "yaw_error")

# What GET /variables serves with the directions (README "Directions"; built by hand in tests).
CATALOGUE = {
    "wind_speed": Variable("wind_speed", "m/s", None, 0.0, 40.0, 10.0, frozen_exempt=(0.0,)),
    "power": Variable("power", "kW", None, -150.0, 3450.0, 1500.0, frozen_exempt=(0.0, 3000.0)),
    "ambient_temperature": Variable(
        "ambient_temperature", "°C", None, -40.0, 50.0, 5.0, frozen_exempt=()
    ),
    "wind_direction": Variable(
        "wind_direction", "°", None, 0.0, 360.0, 90.0, kind="circular", frozen_exempt=()
    ),
    "nacelle_position": Variable(
        "nacelle_position",
        "°",
        None,
        0.0,
        360.0,
        30.0,
        kind="circular",
        frozen_minutes=None,
        frozen_exempt=(),
    ),
}
VARIABLES = with_derived(CATALOGUE)

SOURCE_DDL = (
    """CREATE TABLE turbine (id text PRIMARY KEY, rated_power float8, cut_in float8,
                             rated_speed float8, cut_out float8, x float8, y float8)""",
    """CREATE TABLE data (turbine_id text NOT NULL REFERENCES turbine(id),
                          "timestamp" timestamptz NOT NULL, wind_speed float8, power float8,
                          ambient_temperature float8, wind_direction float8,
                          nacelle_position float8, PRIMARY KEY (turbine_id, "timestamp"))""",
)
COLUMNS = ("wind_speed", "power", "ambient_temperature", *DIRECTIONS)

Readings = dict[int, dict[str, float | None]]  # minute of the day → column → value


def at(minute: int) -> datetime:
    return D0 + timedelta(minutes=minute)


def clean_day() -> Readings:
    """A vane turning slowly across north twice, a nacelle 4° behind it: every step < 2°."""
    readings: Readings = {}
    for m in range(1440):
        wind = (200.0 + 170.0 * math.sin(m / 300.0) + 0.37 * m) % 360.0
        nacelle = (wind - 4.0 + 3.0 * math.sin(m / 50.0)) % 360.0
        readings[m] = {"wind_direction": wind, "nacelle_position": nacelle}
    return readings


def put(readings: Readings, column: str, first: int, values) -> None:
    for i, value in enumerate(values):
        readings[first + i][column] = value


@pytest.fixture
def source(source_url) -> str:
    engine = sa.create_engine(source_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for ddl in SOURCE_DDL:
            conn.execute(sa.text(ddl))
        conn.execute(
            sa.text(
                "INSERT INTO turbine (id, rated_power, cut_in, rated_speed, cut_out, x, y)"
                " VALUES ('WTG01', 3000, 3, 12, 25, 0, 0)"
            )
        )
    engine.dispose()
    return source_url


def insert(url: str, readings: Readings) -> None:
    rows = [
        {"t": TURBINE, "ts": at(m), **{c: row.get(c) for c in COLUMNS}}
        for m, row in sorted(readings.items())
    ]
    names = ", ".join(COLUMNS)
    values = ", ".join(f":{c}" for c in COLUMNS)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f'INSERT INTO data (turbine_id, "timestamp", {names}) VALUES (:t, :ts, {values})'
            ),
            rows,
        )
    engine.dispose()


def pipeline(url: str, qc: bool = True, names=OUTPUT) -> list[tuple]:
    raw = raw_from_source(url, D0, END, COLUMNS, [TURBINE])
    wanted = {name: VARIABLES[name] for name in names}
    result = transform(raw, D0, END, turbines=[TURBINE], variables=wanted, qc=qc)
    return rows_from_stats(result.stats)


def sql(url: str, qc: bool = True, names=OUTPUT) -> list[tuple]:
    return reference_stats(
        url, D0, END, turbines=[TURBINE], variables=names, limits=CATALOGUE, qc=qc
    )


def window(rows: list[tuple], variable: str, minute: int) -> tuple:
    return {row[:3]: row for row in rows}[(TURBINE, variable, at(minute))]


# --- hand-made cases -----------------------------------------------------------------------------


def _north(r):
    put(r, "wind_direction", 600, [350.0, 355.0, 5.0, 10.0, 352.0, 357.0, 2.0, 8.0, 354.0, 6.0])


def _zero_and_360(r):
    put(r, "wind_direction", 700, [0.0, 360.0, 0.5, 359.5, 360.0, 1.0, 359.0, 0.25, 359.75, 0.75])
    put(r, "nacelle_position", 700, [360.0, 0.0] * 5)
    put(r, "wind_direction", 720, [360.5, -0.5])  # out of range on either side


def _opposite(r):
    put(r, "wind_direction", 799, [None, 90.0, 270.0, *[None] * 8])


def _single(r):
    put(r, "wind_direction", 900, [None] * 5 + [123.25] + [None] * 4)


def _stuck_vane(r):
    put(r, "wind_direction", 100, [123.0] * 9)  # 9 minutes: valid
    put(r, "wind_direction", 200, [45.0] * 10)  # 10 minutes: frozen


def _nacelle_still(r):
    put(r, "nacelle_position", 300, [210.0] * 60)  # a yaw system holding still: valid


def _spikes_across_north(r):
    put(r, "wind_direction", 397, [356.0, 357.0, 357.5, 358.0, 100.0, 2.0, 3.0, 4.0, 5.0])
    put(r, "wind_direction", 497, [357.0, 357.5, 358.0, 359.0, 90.0, 1.0, 2.0, 3.0, 4.0])


def _nacelle_jump(r):
    put(r, "nacelle_position", 595, [104.0] * 5 + [135.0] + [104.0] * 5)  # +31 and back: spike
    put(r, "nacelle_position", 645, [104.0] * 5 + [134.0] + [104.0] * 5)  # +30 and back: valid


def _yaw_across_180(r):
    put(r, "wind_direction", 1000, [5.0 + i for i in range(10)])
    offsets = [1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1.5, -1.5]
    put(r, "nacelle_position", 1000, [(185.0 + i + o) % 360 for i, o in enumerate(offsets)])


@dataclass(frozen=True)
class Case:
    name: str
    edit: Callable[[Readings], None]
    expect: dict[tuple[str, str], int] = field(default_factory=dict)  # non-valid statuses


CASES = [
    Case("window_crossing_north", _north),
    Case("readings_0_and_360", _zero_and_360, {("wind_direction", "out_of_range"): 2}),
    Case("two_opposite_directions", _opposite, {("wind_direction", "missing"): 9}),
    Case("a_single_reading", _single, {("wind_direction", "missing"): 9}),
    Case("stuck_vane_9_and_10_minutes", _stuck_vane, {("wind_direction", "frozen"): 10}),
    Case("nacelle_still_for_an_hour", _nacelle_still),
    Case("spike_across_north", _spikes_across_north, {("wind_direction", "spike"): 1}),
    Case("nacelle_jump_of_31_and_back", _nacelle_jump, {("nacelle_position", "spike"): 1}),
    Case("yaw_error_across_180", _yaw_across_180),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_edge_case_matches_sql(source, case):
    readings = clean_day()
    case.edit(readings)
    insert(source, readings)
    found = reference_status(
        source, D0, END, turbines=[TURBINE], variables=DIRECTIONS, limits=CATALOGUE
    )
    statuses = Counter((variable, status) for _, variable, _, _, status in found)
    assert {key: n for key, n in statuses.items() if key[1] != "valid"} == case.expect

    got, expected = pipeline(source), sql(source)
    assert len(expected) == len(OUTPUT) * 144
    assert_stats_equal(got, expected)
    assert_stats_equal(pipeline(source, qc=False), sql(source, qc=False))


def _transformed(source, edit) -> list[tuple]:
    readings = clean_day()
    edit(readings)
    insert(source, readings)
    return pipeline(source)


def test_a_window_across_north_has_its_mean_at_north(source):
    row = window(_transformed(source, _north), "wind_direction", 600)
    _, _, _, mean, low, high, std, count, rejected = row
    assert (count, rejected) == (10, 0)
    assert abs((mean + 180) % 360 - 180) < 1.0  # near 0°, never near 180°
    assert (low, high) == pytest.approx((350.0, 10.0))  # min above max: across north
    assert 0 < std < 10


def test_readings_of_360_are_0(source):
    rows = _transformed(source, _zero_and_360)
    row = window(rows, "nacelle_position", 700)  # 360, 0, 360, 0, …
    assert row[3:] == pytest.approx((0.0, 0.0, 0.0, 0.0, 10, 0), abs=1e-9)
    assert window(rows, "wind_direction", 720)[7:] == (8, 2)


def test_opposite_directions_have_no_mean_but_a_count_and_a_std(source):
    row = window(_transformed(source, _opposite), "wind_direction", 800)
    assert row[3:6] == (None, None, None)
    assert row[7:] == (2, 0)
    assert row[6] == pytest.approx(90.0 * 2 / math.sqrt(3))  # ε = 1: Yamartino's ceiling


def test_a_single_reading_is_its_own_mean_min_and_max(source):
    row = window(_transformed(source, _single), "wind_direction", 900)
    assert row[3:] == pytest.approx((123.25, 123.25, 123.25, None, 1, 0))


def test_yaw_error_across_180_wraps_to_minus_180(source):
    row = window(_transformed(source, _yaw_across_180), "yaw_error", 1000)
    _, _, _, mean, low, high, _, count, _ = row
    assert count == 10
    assert abs((mean + 180) % 360 - 180) == pytest.approx(180.0)  # mean at ±180
    assert -180.0 <= mean < 180.0
    assert (low, high) == pytest.approx((177.0, -177.0))  # unwrapped 177 … 183


def test_yaw_error_counts_only_minutes_where_both_are_valid(source):
    rows = _transformed(source, _stuck_vane)  # the frozen vane's 10 minutes: no yaw error
    assert window(rows, "yaw_error", 200)[7:] == (0, 10)
    assert window(rows, "nacelle_position", 200)[7:] == (10, 0)


# --- a faulty day --------------------------------------------------------------------------------


def faulty_day(seed: int = 7) -> Readings:
    """A random-walk vane and a nacelle that follows it with a dead band, plus every fault kind:
    NULL runs, stuck vanes, spikes across north, out-of-range readings, 0 and 360."""
    rng = np.random.default_rng(seed)
    wind = np.mod(200.0 + np.cumsum(rng.normal(0.0, 6.0, 1440)), 360.0)
    nacelle = np.empty(1440)
    held = wind[0]
    for m in range(1440):  # yaw when the error leaves a 10° dead band
        if abs((wind[m] - held + 180.0) % 360.0 - 180.0) > 10.0:
            held = wind[m]
        nacelle[m] = held
    readings: Readings = {
        m: {"wind_direction": float(wind[m]), "nacelle_position": float(nacelle[m])}
        for m in range(1440)
    }
    for first in rng.choice(1400, 12, replace=False):  # stuck vanes of 8-14 minutes
        put(readings, "wind_direction", int(first), [float(wind[first])] * int(rng.integers(8, 15)))
    for m in rng.choice(np.arange(1, 1439), 25, replace=False):  # jumps and back, across north
        readings[int(m)]["wind_direction"] = float((wind[m] + rng.choice([-1, 1]) * 120) % 360)
    for m in rng.choice(np.arange(1, 1439), 8, replace=False):
        readings[int(m)]["nacelle_position"] = float((nacelle[m] + 45.0) % 360)
    for m, value in zip(
        rng.choice(1440, 6, replace=False), [365, -3, 400, 720, -0.1, 360.01], strict=True
    ):
        readings[int(m)]["wind_direction"] = float(value)
    for m in rng.choice(1440, 10, replace=False):
        readings[int(m)][rng.choice(DIRECTIONS)] = float(rng.choice([0.0, 360.0]))
    for first in rng.choice(1400, 5, replace=False):
        put(readings, str(rng.choice(DIRECTIONS)), int(first), [None] * int(rng.integers(1, 30)))
    for m in rng.choice(1440, 5, replace=False):  # absent minutes
        readings.pop(int(m), None)
    return readings


def test_a_faulty_day_matches_sql(source):
    insert(source, faulty_day())
    found = reference_status(
        source, D0, END, turbines=[TURBINE], variables=DIRECTIONS, limits=CATALOGUE
    )
    statuses = Counter((variable, status) for _, variable, _, _, status in found)
    for reason in ("frozen", "spike", "out_of_range", "missing"):
        assert statuses["wind_direction", reason] > 0, reason
    assert statuses["nacelle_position", "spike"] > 0
    assert statuses["nacelle_position", "frozen"] == 0  # no frozen rule for the nacelle

    expected = sql(source)
    assert_stats_equal(pipeline(source), expected)
    assert_stats_equal(pipeline(source, qc=False), sql(source, qc=False))

    # The day figures the Dagster checks read, from the STATS table, against the SQL rows.
    raw = raw_from_source(source, D0, END, COLUMNS, [TURBINE])
    stats = transform(raw, D0, END, turbines=[TURBINE], variables=VARIABLES).stats
    share = circular.wide_window_share(stats, OUTPUT).to_pylist()
    for variable in OUTPUT:
        mine = [row for row in expected if row[1] == variable and row[7] >= 1]
        wide = sum(1 for r in mine if r[3] is None or (r[5] - r[4]) % 360 > 180)
        (got,) = [row for row in share if row["variable"] == variable]
        assert (got["windows"], got["wide"]) == (len(mine), wide)
        assert got["share"] == pytest.approx(wide / len(mine))
    means = [row[3] for row in expected if row[1] == "yaw_error" and row[3] is not None]
    s = sum(math.sin(math.radians(m)) for m in means) / len(means)
    c = sum(math.cos(math.radians(m)) for m in means) / len(means)
    (day,) = circular.daily_mean(stats).to_pylist()
    assert day["turbine_id"] == TURBINE and day["windows"] == len(means)
    assert day["mean"] == pytest.approx(math.degrees(math.atan2(s, c)), abs=1e-9)
    assert -180 <= day["mean"] < 180


def test_without_qc_off_the_circle_readings_are_still_angles():
    """qc off: every non-NULL reading counts, 720 is 0 and -3 is 357 (sin and cos do not care)."""
    stamps = [D0 + timedelta(minutes=m) for m in range(3)]
    raw = pa.table(
        {
            "turbine_id": pa.array([TURBINE] * 3).dictionary_encode(),
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "wind_direction": pa.array([720.0, -3.0, 3.0]),
        }
    )
    wanted = {"wind_direction": VARIABLES["wind_direction"]}
    stats = transform(raw, D0, END, turbines=[TURBINE], variables=wanted, qc=False).stats
    first = stats.slice(0, 1).to_pylist()[0]
    assert first["count"] == 3 and first["mean"] == pytest.approx(0.0, abs=1e-9)
    assert (first["min"], first["max"]) == pytest.approx((357.0, 3.0))


def test_the_readme_example():
    """The README's worked example ("Directions"), as the code computes it."""
    x = np.array([350.0, 355.0, 5.0, 10.0, 352.0, 8.0, 358.0, 2.0, 351.0, 9.0])
    count, mean, low, high, std = circular.window_stats(np.zeros(10, np.int64), x, 1)
    assert count[0] == 10 and abs((mean[0] + 180) % 360 - 180) < 1e-9
    assert (low[0], high[0]) == pytest.approx((350.0, 10.0))
    r = math.hypot(np.mean(np.sin(np.radians(x))), np.mean(np.cos(np.radians(x))))
    epsilon = math.sqrt(1 - r * r)
    sigma = math.degrees(math.asin(epsilon)) * (1 + (2 / math.sqrt(3) - 1) * epsilon**3)
    assert std[0] == pytest.approx(sigma, abs=1e-9) and round(std[0], 3) == 7.403
    assert (x.mean(), round(x.std(ddof=1), 1)) == (180.0, 182.6)  # taken as numbers
    assert circular.difference(np.array([10.0, 350.0]), np.array([355.0, 10.0])).tolist() == [
        15.0,
        -20.0,
    ]


def test_wide_windows_are_those_spread_over_180_around_the_mean_or_without_one():
    minutes_values = [(0, 0.0), (1, 100.0), (2, 200.0), (10, 90.0), (11, 270.0), (20, 10.0)]
    raw = pa.table(
        {
            "turbine_id": pa.array([TURBINE] * 6).dictionary_encode(),
            "timestamp": pa.array([at(m) for m, _ in minutes_values], pa.timestamp("us", tz="UTC")),
            "wind_direction": pa.array([v for _, v in minutes_values]),
        }
    )
    wanted = {"wind_direction": VARIABLES["wind_direction"]}
    stats = transform(raw, D0, END, turbines=[TURBINE], variables=wanted, qc=False).stats
    first = stats.slice(0, 1).to_pylist()[0]
    assert first["mean"] == pytest.approx(100.0)  # 0°, 100°, 200°: 200° apart around 100°
    assert (first["min"], first["max"]) == pytest.approx((0.0, 200.0))
    (row,) = circular.wide_window_share(stats, ["wind_direction"]).to_pylist()
    assert (row["windows"], row["wide"]) == (3, 2)
    assert row["share"] == pytest.approx(2 / 3)
    assert row["day"] == D0.date()
