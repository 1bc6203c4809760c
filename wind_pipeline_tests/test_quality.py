"""QC (docs/rules.md) against the SQL reference, on hand-made edge cases in a real source database.

Each case is one or two days of smooth, clean readings (no two consecutive values equal, every
step far below ``max_step``) with a few readings edited. For each case the test asserts twice:
the SQL reference finds the statuses the case is about (so the case tests what its name says),
and the pipeline's statistics (mean, min, max, std, count, rejected of every window) equal the
SQL's to 1e-9.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from connector_api.schema import KNOWN_VARIABLES
from wind_pipeline.etl import quality
from wind_pipeline.etl.calendar import MINUTE_US
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    raw_from_source,
    reference_stats,
    reference_status,
    rows_from_stats,
    target_stats,
)

D0 = datetime(2024, 1, 1, tzinfo=UTC)
TURBINE = "WTG01"
VARIABLES = ("wind_speed", "power")
MINUTE = timedelta(minutes=1)

SOURCE_DDL = (
    """CREATE TABLE turbine (id text PRIMARY KEY, rated_power float8, cut_in float8,
                             rated_speed float8, cut_out float8, x float8, y float8)""",
    """CREATE TABLE data (turbine_id text NOT NULL REFERENCES turbine(id),
                          "timestamp" timestamptz NOT NULL, wind_speed float8, power float8,
                          ambient_temperature float8, PRIMARY KEY (turbine_id, "timestamp"))""",
)

Readings = dict[datetime, dict[str, float | None]]


def at(minute: float, day: int = 0) -> datetime:
    """The timestamp ``minute`` minutes (fractions allowed) after midnight of day ``day``."""
    return D0 + timedelta(days=day, microseconds=round(minute * 60_000_000))


def clean_days(days: int) -> Readings:
    """Smooth readings, strictly increasing by ~0.001 per minute on top of a slow wave."""
    readings: Readings = {}
    for m in range(1440 * days):
        wind = 8.0 + 2.0 * math.sin(m / 90.0) + 1e-3 * m
        power = 1000.0 + 80.0 * math.sin(m / 70.0) + 1e-2 * m
        readings[D0 + m * MINUTE] = {"wind_speed": wind, "power": power}
    return readings


def fill(readings: Readings, variable: str, minutes: range, value: float | None, day: int = 0):
    for m in minutes:
        readings[at(m, day)][variable] = value


def set_value(readings: Readings, variable: str, minute: float, value, day: int = 0):
    """Set one reading; a minute with no row yet (off grid) gets a row with the other NULL."""
    row = readings.setdefault(at(minute, day), dict.fromkeys(VARIABLES))
    row[variable] = value


@dataclass(frozen=True)
class Case:
    name: str
    edit: Callable[[Readings], None]
    # {(variable, status): readings}, for the statuses the case is about (others must be 0)
    expect: dict[tuple[str, str], int] = field(default_factory=dict)
    days: int = 1


def _frozen_across_boundary(r):
    fill(r, "wind_speed", range(5, 17), 7.25)  # 00:05-00:16, 12 readings over two windows


def _runs_of_9_and_10(r):
    fill(r, "wind_speed", range(100, 109), 6.5)  # 9: not frozen
    fill(r, "wind_speed", range(200, 210), 6.5)  # 10: frozen


def _runs_back_to_back(r):
    fill(r, "wind_speed", range(1100, 1110), 6.0)  # two frozen runs, the second at the next
    fill(r, "wind_speed", range(1110, 1122), 6.5)  # minute with another value


def _runs_at_bounds(r):
    fill(r, "power", range(300, 330), 3000.0)  # rated power: clipping, not frozen
    fill(r, "power", range(400, 460), 0.0)  # idling at physical_min
    fill(r, "wind_speed", range(400, 420), 0.0)


def _broken_runs(r):
    fill(r, "wind_speed", range(400, 415), 5.5)
    set_value(r, "wind_speed", 407, None)  # NULL inside: runs of 7 and 7
    fill(r, "wind_speed", range(500, 515), 5.5)
    del r[at(507)]  # absent minute inside (both variables)
    fill(r, "wind_speed", range(600, 615), 5.5)
    set_value(r, "wind_speed", 607, 99.0)  # out of range inside: runs of 7 and 7
    fill(r, "power", range(700, 719), 1234.5)  # 19 in a row, off-grid readings among them
    set_value(r, "power", 705.5, 1234.5)
    set_value(r, "power", 710.25, 99_999.0)


def _spikes(r):
    set_value(r, "wind_speed", 720, r[at(720)]["wind_speed"] + 15.0)  # up and back
    set_value(r, "power", 725, r[at(725)]["power"] + 1600.0)
    set_value(r, "power", 735, r[at(735)]["power"] - 900.0)  # within max_step: valid
    set_value(r, "wind_speed", 0, 30.0)  # first minute of the day: no previous minute
    set_value(r, "wind_speed", 1439, 30.0)  # last minute: no next minute
    # +10 on a rising slope: more than max_step above the previous minute, not above the next
    set_value(r, "wind_speed", 740, r[at(740)]["wind_speed"] + 10.0)
    for m in range(800, 900):  # a step that does not come back
        r[at(m)]["wind_speed"] += 15.0


def _spike_next_to_out_of_range(r):
    set_value(r, "wind_speed", 900, 99.0)  # out of range
    set_value(r, "wind_speed", 901, 26.0)  # would be a spike, but its previous minute is out
    set_value(r, "wind_speed", 910, 26.0)
    set_value(r, "wind_speed", 911, -5.0)
    set_value(r, "power", 920, 2900.0)
    set_value(r, "power", 921, None)  # NULL next minute: no spike
    set_value(r, "power", 930, 2900.0)
    del r[at(929)]  # absent previous minute: no spike


def _spike_next_to_frozen(r):
    fill(r, "wind_speed", range(1000, 1010), 5.0)  # frozen
    set_value(r, "wind_speed", 1010, 20.0)  # a frozen neighbour is a neighbour: spike
    set_value(r, "wind_speed", 1011, 5.1)
    fill(r, "wind_speed", range(1020, 1030), 20.0)  # a spike-shaped reading inside a run
    set_value(r, "wind_speed", 1019, 5.0)
    set_value(r, "wind_speed", 1030, 5.0)


def _bounds(r):
    set_value(r, "wind_speed", 1000, 0.0)  # equal to physical_min: in range
    fill(r, "power", range(1009, 1012), 2000.0)
    set_value(r, "power", 1010, 3000.0)  # equal to physical_max, neighbours within max_step
    set_value(r, "wind_speed", 1020, 35.0)
    set_value(r, "wind_speed", 1021, 40.0)
    set_value(r, "wind_speed", 1022, 35.0)
    set_value(r, "wind_speed", 1030, 40.000001)  # just above: out of range
    set_value(r, "power", 1040, -1e-9)  # just below: out of range


def _midnight(r):
    fill(r, "wind_speed", range(1435, 1440), 6.0, day=0)  # 5 before midnight
    fill(r, "wind_speed", range(0, 6), 6.0, day=1)  # 6 after: neither day has 10
    fill(r, "power", range(1430, 1440), 1500.0, day=0)  # 10 before: frozen
    fill(r, "power", range(0, 9), 1500.0, day=1)  # 9 after: not


def _off_grid(r):
    set_value(r, "wind_speed", 0.5, 8.0)  # 00:00:30
    set_value(r, "power", 0.5, 1000.0)
    set_value(r, "wind_speed", 200.5, 9.0)  # three off-grid rows in window 03:20
    set_value(r, "wind_speed", 201.25, 9.1)
    set_value(r, "wind_speed", 202 + 1 / 60_000_000, 9.2)  # one microsecond past the minute
    set_value(r, "wind_speed", 203.5, None)  # NULL off grid: missing
    fill(r, "wind_speed", range(300, 310), 4.4)  # frozen, an off-grid equal reading inside
    set_value(r, "wind_speed", 304.5, 4.4)
    set_value(r, "wind_speed", 360.5, 30.0)  # off grid between a spike and its neighbour
    set_value(r, "wind_speed", 361, 25.0)
    set_value(r, "wind_speed", 1439.5, 8.0)  # off grid in the day's last minute


CASES = [
    Case("frozen_across_window_boundary", _frozen_across_boundary, {("wind_speed", "frozen"): 12}),
    Case("runs_of_9_and_10", _runs_of_9_and_10, {("wind_speed", "frozen"): 10}),
    Case("frozen_runs_back_to_back", _runs_back_to_back, {("wind_speed", "frozen"): 22}),
    Case("runs_at_bounds_not_frozen", _runs_at_bounds),
    Case(
        "null_absent_or_out_of_range_inside_run",
        _broken_runs,
        {
            ("wind_speed", "missing"): 3,  # 407, and the off-grid rows' wind_speed
            ("wind_speed", "out_of_range"): 1,
            ("power", "frozen"): 19,
            ("power", "off_grid"): 2,
        },
    ),
    Case(
        "spikes",
        _spikes,
        {("wind_speed", "spike"): 1, ("power", "spike"): 1},
    ),
    Case(
        "spike_next_to_out_of_range_or_missing",
        _spike_next_to_out_of_range,
        {("wind_speed", "out_of_range"): 2, ("power", "missing"): 1},
    ),
    Case(
        "spike_next_to_frozen",
        _spike_next_to_frozen,
        {("wind_speed", "frozen"): 20, ("wind_speed", "spike"): 1},
    ),
    Case(
        "values_at_bounds",
        _bounds,
        {("wind_speed", "out_of_range"): 1, ("power", "out_of_range"): 1},
    ),
    Case("run_across_midnight", _midnight, {("power", "frozen"): 10}, days=2),
    Case(
        "off_grid",
        _off_grid,
        {
            ("wind_speed", "off_grid"): 7,
            ("power", "off_grid"): 1,
            ("wind_speed", "missing"): 1,
            ("power", "missing"): 7,  # the off-grid rows that carry wind_speed only
            ("wind_speed", "frozen"): 10,
            ("wind_speed", "spike"): 1,
        },
    ),
]


@pytest.fixture
def source(source_url) -> str:
    """The test's source database with the fleet schema, made by plain SQL, and one turbine."""
    engine = sa.create_engine(source_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for ddl in SOURCE_DDL:
            conn.execute(sa.text(ddl))
        conn.execute(
            sa.text(
                "INSERT INTO turbine (id, rated_power, cut_in, rated_speed, cut_out, x, y)"
                " VALUES ('WTG01', 3000, 3, 12, 25, 0, 0), ('WTG02', 3000, 3, 12, 25, 400, 0)"
            )
        )
    engine.dispose()
    return source_url


def insert(url: str, readings: Readings, turbine: str = TURBINE) -> None:
    rows = [
        {"t": turbine, "ts": ts, "w": row.get("wind_speed"), "p": row.get("power")}
        for ts, row in sorted(readings.items())
    ]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                'INSERT INTO data (turbine_id, "timestamp", wind_speed, power)'
                " VALUES (:t, :ts, :w, :p)"
            ),
            rows,
        )
    engine.dispose()


def qc_stats(raw: pa.Table, start, end, *, turbines, variables, limits, qc=True) -> list[tuple]:
    """Window statistics from ``quality.classify`` with plain numpy (no pandas, no SQL)."""
    turbine_index = {t: i for i, t in enumerate(turbines)}
    codes = np.array([turbine_index[t] for t in raw.column("turbine_id").to_pylist()], np.int64)
    ts = raw.column("timestamp").cast(pa.int64()).to_numpy()
    start_us = int(start.timestamp() * 1e6)
    n_windows = int((end - start).total_seconds()) // 600
    window = (ts - start_us) // 600_000_000
    group = codes * n_windows + window
    n_groups = len(turbines) * n_windows
    rows = []
    for variable in variables:
        values = raw.column(variable).to_numpy(zero_copy_only=False).astype(np.float64)
        if qc:
            status = quality.classify(quality.day_segments(codes, ts), ts, values, limits[variable])
        else:
            status = quality.classify_plain(values)
        valid = quality.is_valid(status)
        count = np.bincount(group[valid], minlength=n_groups)
        rejected = np.bincount(group[quality.is_rejected(status)], minlength=n_groups)
        total = np.bincount(group[valid], values[valid], minlength=n_groups)
        mean = total / np.maximum(count, 1)
        dev = values[valid] - mean[group[valid]]
        square = np.bincount(group[valid], dev * dev, minlength=n_groups)
        low = np.full(n_groups, np.inf)
        np.minimum.at(low, group[valid], values[valid])
        high = np.full(n_groups, -np.inf)
        np.maximum.at(high, group[valid], values[valid])
        for g in range(n_groups):
            turbine, w = turbines[g // n_windows], g % n_windows
            c = int(count[g])
            some, two = c >= 1, c >= 2
            rows.append(
                (
                    turbine,
                    variable,
                    start + timedelta(minutes=10 * w),
                    float(mean[g]) if some else None,
                    float(low[g]) if some else None,
                    float(high[g]) if some else None,
                    math.sqrt(square[g] / (c - 1)) if two else None,
                    c,
                    int(rejected[g]),
                )
            )
    rows.sort(key=lambda row: row[:3])
    return rows


@pytest.fixture(params=["classify", "transform"])
def pipeline_stats(request) -> Callable[..., list[tuple]]:
    """The statistics under test: through classify + numpy, and through the core's transform."""
    if request.param == "classify":
        return qc_stats
    from wind_pipeline.etl.catalogue import Variable
    from wind_pipeline.etl.transform import transform

    def through_transform(raw, start, end, *, turbines, variables, limits, qc=True):
        described = {
            v: Variable(
                v,
                physical_min=limits[v].physical_min,
                physical_max=limits[v].physical_max,
                max_step=limits[v].max_step,
            )
            for v in variables
        }
        result = transform(raw, start, end, turbines=turbines, variables=described, qc=qc)
        return rows_from_stats(result.stats)

    return through_transform


def _statuses(url, start, end) -> Counter:
    found = reference_status(url, start, end, turbines=[TURBINE], variables=VARIABLES)
    return Counter((variable, status) for _, variable, _, _, status in found)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_edge_case_matches_sql(source, pipeline_stats, case):
    readings = clean_days(case.days)
    case.edit(readings)
    insert(source, readings)
    start, end = D0, D0 + timedelta(days=case.days)

    statuses = _statuses(source, start, end)
    assert {key: n for key, n in statuses.items() if key[1] != "valid"} == case.expect

    expected = reference_stats(source, start, end, turbines=[TURBINE], limits=KNOWN_VARIABLES)
    assert len(expected) == 2 * 144 * case.days
    raw = raw_from_source(source, start, end, VARIABLES, [TURBINE])
    got = pipeline_stats(
        raw, start, end, turbines=[TURBINE], variables=VARIABLES, limits=KNOWN_VARIABLES
    )
    assert_stats_equal(got, expected)


def test_off_grid_readings_never_make_a_window_count_above_ten(source, pipeline_stats):
    readings = clean_days(1)
    _off_grid(readings)
    insert(source, readings)
    start, end = D0, D0 + timedelta(days=1)
    raw = raw_from_source(source, start, end, VARIABLES, [TURBINE])
    got = pipeline_stats(
        raw, start, end, turbines=[TURBINE], variables=VARIABLES, limits=KNOWN_VARIABLES
    )
    window = {row[:3]: row for row in got}[(TURBINE, "wind_speed", at(200))]
    assert window[7:] == (10, 3)  # count, rejected: 13 rows in the window, 10 on the grid
    assert max(row[7] for row in got) == 10
    # With QC off the same rows are the exercise's plain statistics: all 13 count.
    plain = pipeline_stats(
        raw, start, end, turbines=[TURBINE], variables=VARIABLES, limits=KNOWN_VARIABLES, qc=False
    )
    assert {row[:3]: row for row in plain}[(TURBINE, "wind_speed", at(200))][7:] == (13, 0)


def test_qc_off_is_postgres_plain_aggregates(source, pipeline_stats):
    readings = clean_days(1)
    _spikes(readings)
    _off_grid(readings)
    _runs_of_9_and_10(readings)
    insert(source, readings)
    start, end = D0, D0 + timedelta(days=1)
    expected = reference_stats(source, start, end, turbines=[TURBINE], qc=False)
    assert all(row[8] == 0 for row in expected)
    raw = raw_from_source(source, start, end, VARIABLES, [TURBINE])
    got = pipeline_stats(
        raw, start, end, turbines=[TURBINE], variables=VARIABLES, limits=KNOWN_VARIABLES, qc=False
    )
    assert_stats_equal(got, expected)


def test_turbines_are_judged_apart(source, pipeline_stats):
    """A run split across two turbines is no run; a turbine without rows has count-0 windows."""
    first, second = clean_days(1), clean_days(1)
    fill(first, "wind_speed", range(100, 105), 6.0)
    fill(second, "wind_speed", range(105, 110), 6.0)
    fill(second, "power", range(0, 12), 1111.0)
    insert(source, first, "WTG01")
    insert(source, second, "WTG02")
    start, end = D0, D0 + timedelta(days=1)
    expected = reference_stats(source, start, end)  # turbines from the turbine table
    assert {row[0] for row in expected} == {"WTG01", "WTG02"}
    assert sum(row[8] for row in expected) == 12
    raw = raw_from_source(source, start, end, VARIABLES)
    got = pipeline_stats(
        raw, start, end, turbines=["WTG01", "WTG02"], variables=VARIABLES, limits=KNOWN_VARIABLES
    )
    assert_stats_equal(got, expected)


def test_seeded_faulty_day_matches_sql(seed_source, source_url, pipeline_stats):
    seed_source(days=1, faults=True)
    start, end = D0, D0 + timedelta(days=1)
    variables = ("wind_speed", "power", "ambient_temperature")
    expected = reference_stats(source_url, start, end, variables=variables)
    assert sum(row[8] for row in expected) > 0  # the faults are seen
    raw = raw_from_source(source_url, start, end, variables)
    turbines = sorted({row[0] for row in expected})
    got = pipeline_stats(
        raw, start, end, turbines=turbines, variables=variables, limits=KNOWN_VARIABLES
    )
    assert_stats_equal(got, expected)


def test_every_edge_case_through_the_api_into_the_target(source, serve_api, target_url, engine):
    """The cases side by side, a day (or two) each: wind-etl's path, HTTP to target, QC on then off.

    Switching QC replaces every row of a day: no stale ``rejected`` survives either way.
    """
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.pipeline import run_range

    readings: Readings = {}
    offset = 0
    for case in CASES:
        rows = clean_days(case.days)
        case.edit(rows)
        readings.update({ts + timedelta(days=offset): row for ts, row in rows.items()})
        offset += case.days
    insert(source, readings)
    start, end = D0, D0 + timedelta(days=offset)
    first, last = start.date(), (end - timedelta(days=1)).date()
    with ConnectorClient(serve_api()) as client:
        for qc in (True, False, True):
            run_range(client, engine, first, last, turbines=[TURBINE], qc=qc)
            expected = reference_stats(source, start, end, turbines=[TURBINE], qc=qc)
            assert_stats_equal(target_stats(target_url, start, end), expected)
    assert sum(row[8] for row in expected) > 100


# --- classify against a per-reading reading of §11, in plain Python ----------------------------


@dataclass(frozen=True)
class Limits:
    physical_min: float | None
    physical_max: float | None
    max_step: float | None


def plain_status(rows: list[tuple[int, int, float]], limits: Limits) -> list[int]:
    """§11 word by word, one reading at a time: rows are (segment, timestamp_us, value)."""
    minute = MINUTE_US
    seen: set[tuple[int, int]] = set()
    early = []
    for seg, ts, v in rows:
        if math.isnan(v):
            early.append(quality.MISSING)
        elif ts % minute or (seg, ts) in seen:
            early.append(quality.OFF_GRID)
        elif (limits.physical_min is not None and v < limits.physical_min) or (
            limits.physical_max is not None and v > limits.physical_max
        ):
            early.append(quality.OUT_OF_RANGE)
        else:
            early.append(None)
        if early[-1] != quality.MISSING and ts % minute == 0:
            seen.add((seg, ts))
    in_range = {
        (seg, ts // minute): v
        for (seg, ts, v), status in zip(rows, early, strict=True)
        if status is None
    }

    def run_length(seg: int, m: int, v: float) -> int:
        length, before, after = 1, m - 1, m + 1
        while in_range.get((seg, before)) == v:
            length, before = length + 1, before - 1
        while in_range.get((seg, after)) == v:
            length, after = length + 1, after + 1
        return length

    bounds = {limits.physical_min, limits.physical_max} - {None}
    result = []
    for (seg, ts, v), status in zip(rows, early, strict=True):
        if status is not None:
            result.append(status)
            continue
        m = ts // minute
        if v not in bounds and run_length(seg, m, v) >= quality.FROZEN_RUN:
            result.append(quality.FROZEN)
            continue
        before, after = in_range.get((seg, m - 1)), in_range.get((seg, m + 1))
        step = limits.max_step
        has_both = step is not None and before is not None and after is not None
        if has_both and (
            (v - before > step and v - after > step) or (before - v > step and after - v > step)
        ):
            result.append(quality.SPIKE)
        else:
            result.append(quality.VALID)
    return result


_values = st.sampled_from([0.0, 1.0, 2.0, 15.0, 30.0, 100.0, -1.0, 101.0, math.nan])
_runs = st.lists(st.tuples(_values, st.integers(1, 12)), min_size=1, max_size=12)
_limits = st.sampled_from(
    [Limits(0.0, 100.0, 10.0), Limits(None, 100.0, 10.0), Limits(0.0, None, None)]
)


@st.composite
def readings(draw):
    """Runs of values over 1-3 segments with absent minutes and off-grid or duplicate rows."""
    rows = []
    for seg in range(draw(st.integers(1, 3))):
        minute = draw(st.integers(0, 3))
        for value, length in draw(_runs):
            for _ in range(length):
                if not draw(st.integers(0, 9)):
                    minute += 1  # an absent minute
                rows.append((seg, minute * MINUTE_US, value))
                extra = draw(st.integers(0, 14))
                if extra == 0:  # off grid, inside the minute
                    rows.append((seg, minute * MINUTE_US + 30_000_000, draw(_values)))
                elif extra == 1:  # a second row at the same minute
                    rows.append((seg, minute * MINUTE_US, draw(_values)))
                minute += 1
    return rows


@settings(max_examples=300, deadline=None)
@given(rows=readings(), limits=_limits)
def test_classify_equals_plain_reading_of_the_rules(rows, limits):
    rows.sort(key=lambda row: row[:2])  # stable: a duplicate keeps its place after the first
    segments = np.array([r[0] for r in rows], np.int64)
    timestamps = np.array([r[1] for r in rows], np.int64)
    values = np.array([r[2] for r in rows], np.float64)
    got = quality.classify(segments, timestamps, values, limits)
    assert got.dtype == np.int8
    expected = plain_status(rows, limits)
    assert got.tolist() == expected
    with patch.object(quality, "_BLOCK_ROWS", 5):  # blocks of whole segments, as for a year
        assert quality.classify(segments, timestamps, values, limits).tolist() == expected


def test_classify_plain_and_helpers():
    values = np.array([1.0, np.nan, 1e9, -1e9])
    status = quality.classify_plain(values)
    assert status.tolist() == [quality.VALID, quality.MISSING, quality.VALID, quality.VALID]
    assert not quality.is_rejected(status).any()
    statuses = np.array([0, 1, 2, 3, 4, 5, 5, 0], np.int8)
    groups = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    counts = quality.reason_counts(statuses, groups, 3)
    assert counts.tolist() == [[1, 1, 1, 0, 0, 0], [1, 0, 0, 1, 1, 2], [0] * 6]
    assert quality.REASONS[quality.SPIKE] == "spike"
    assert quality.is_rejected(statuses).tolist() == [0, 0, 1, 1, 1, 1, 1, 0]


def test_classify_empty_and_all_missing():
    empty = np.array([], np.int64)
    limits = Limits(0.0, 1.0, 0.5)
    assert quality.classify(empty, empty, np.array([]), limits).tolist() == []
    nan = np.full(3, np.nan)
    stamps = np.arange(3, dtype=np.int64) * MINUTE_US
    got = quality.classify(np.zeros(3, np.int64), stamps, nan, limits)
    assert got.tolist() == [quality.MISSING] * 3
