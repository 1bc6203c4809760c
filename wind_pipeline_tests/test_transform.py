"""The transform against the SQL reference (docs/rules.md), and its shape on edge cases."""

import math
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest

from wind_pipeline.etl.catalogue import Variable, with_derived
from wind_pipeline.etl.errors import InvalidInputError
from wind_pipeline.etl.transform import QUALITY_SCHEMA, STATS_SCHEMA, transform
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    pipeline_limits,
    raw_from_source,
    reference_stats,
    rows_from_stats,
)

VARIABLES = ("wind_speed", "power")
LIMITS = pipeline_limits()
START, END = day_bounds(DAY)


def limits(*names):
    return {name: LIMITS[name] for name in names}


def raw_table(rows, variables=("wind_speed",)):
    """A RAW table from ``(turbine, datetime, value, ...)`` tuples."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in range(2 + len(variables))]
    return pa.table(
        {
            "turbine_id": pa.array(columns[0], pa.string()).dictionary_encode(),
            "timestamp": pa.array(columns[1], pa.timestamp("us", tz="UTC")),
            **{v: pa.array(columns[2 + i], pa.float64()) for i, v in enumerate(variables)},
        }
    )


@pytest.mark.parametrize("qc", [True, False], ids=["qc on", "qc off"])
def test_a_faulty_fleet_matches_the_sql_reference(seed_source, source_url, qc):
    seed_source(days=2, turbines=3, faults=True)
    start, end = day_bounds(DAY, 2)
    raw = raw_from_source(source_url, start, end, VARIABLES)
    turbines = ["WTG01", "WTG02", "WTG03"]
    result = transform(raw, start, end, turbines=turbines, variables=limits(*VARIABLES), qc=qc)
    expected = reference_stats(source_url, start, end, variables=VARIABLES, qc=qc)
    assert len(expected) == 3 * 2 * 2 * 144
    assert_stats_equal(rows_from_stats(result.stats), expected)
    rejected = sum(row[-1] for row in expected)
    assert (rejected > 0) == qc  # the faults are really rejected with QC on, never with it off


def test_the_stats_table_has_the_contract_shape_and_order(seed_source, source_url):
    seed_source(days=1, turbines=2, faults=True)
    raw = raw_from_source(source_url, START, END, VARIABLES)
    result = transform(
        raw, START, END, turbines=["WTG02", "WTG01"], variables=limits("power", "wind_speed")
    )
    stats = result.stats
    assert stats.schema == STATS_SCHEMA and result.quality.schema == QUALITY_SCHEMA
    keys = list(
        zip(
            stats.column("turbine_id").to_pylist(),
            stats.column("variable").to_pylist(),
            stats.column("timestamp").to_pylist(),
            strict=True,
        )
    )
    assert keys == sorted(keys) and len(set(keys)) == len(keys) == 2 * 2 * 144
    for statistic in ("mean", "min", "max", "std"):  # NULL where undefined, never NaN
        values = stats.column(statistic).to_pylist()
        assert not any(math.isnan(v) for v in values if v is not None)
        assert None in values  # the faulty day has windows where it is undefined
    assert stats.column("count").null_count == stats.column("rejected").null_count == 0


def test_every_window_of_every_turbine_even_without_rows():
    rows = [("WTG01", START + timedelta(minutes=i), 5.0 + i % 3) for i in range(30)]
    rows.append(("WTG07", START, 3.0))  # not requested: ignored
    rows.append(("WTG01", END, 3.0))  # outside the range: ignored
    result = transform(
        raw_table(rows), START, END, turbines=["WTG01", "WTG09"], variables=limits("wind_speed")
    )
    stats = result.stats.to_pylist()
    assert len(stats) == 2 * 144
    by_turbine = {t: [r for r in stats if r["turbine_id"] == t] for t in ("WTG01", "WTG09")}
    assert [r["count"] for r in by_turbine["WTG01"][:4]] == [10, 10, 10, 0]
    assert all(r["count"] == 0 and r["rejected"] == 0 for r in by_turbine["WTG09"])
    assert all(r["mean"] is None and r["std"] is None for r in by_turbine["WTG09"])
    quality = {r["turbine_id"]: r for r in result.quality.to_pylist()}
    assert quality["WTG09"]["missing"] == 1440 and quality["WTG09"]["valid"] == 0
    assert quality["WTG01"]["valid"] == 30 and quality["WTG01"]["missing"] == 1410


def test_off_grid_readings_are_rejected_and_never_samples():
    on_grid = [("WTG01", START + timedelta(minutes=i), 5.0 + i) for i in range(10)]
    off_grid = [("WTG01", START + timedelta(minutes=i, seconds=30), 50.0) for i in range(3)]
    raw = raw_table(sorted(on_grid + off_grid, key=lambda r: r[1]))
    window = transform(raw, START, END, turbines=["WTG01"], variables=limits("wind_speed"))
    first = window.stats.slice(0, 1).to_pylist()[0]
    assert first["count"] == 10 and first["rejected"] == 3
    assert first["mean"] == pytest.approx(9.5) and first["max"] == 14.0
    assert window.quality.to_pylist()[0]["off_grid"] == 3

    plain = transform(raw, START, END, turbines=["WTG01"], variables=limits("wind_speed"), qc=False)
    first = plain.stats.slice(0, 1).to_pylist()[0]
    assert first["count"] == 13 and first["rejected"] == 0  # qc off: every non-NULL reading
    assert plain.quality.to_pylist()[0]["off_grid"] == 0


def test_unsorted_input_and_a_plain_string_turbine_column_give_the_same_result():
    rng = np.random.default_rng(3)
    rows = [
        (t, START + timedelta(minutes=int(m)), float(v))
        for t in ("WTG01", "WTG02")
        for m, v in zip(range(0, 1440, 3), rng.uniform(0, 20, 480), strict=True)
    ]
    ordered = raw_table(rows)
    shuffled = raw_table([rows[i] for i in rng.permutation(len(rows))])
    shuffled = shuffled.set_column(0, "turbine_id", shuffled.column(0).cast(pa.string()))
    args = {"turbines": ["WTG01", "WTG02"], "variables": limits("wind_speed")}
    assert transform(shuffled, START, END, **args).stats.equals(
        transform(ordered, START, END, **args).stats
    )


def test_quality_counts_add_up_to_the_statistics(seed_source, source_url):
    seed_source(days=1, turbines=2, faults=True)
    raw = raw_from_source(source_url, START, END, VARIABLES)
    result = transform(raw, START, END, turbines=["WTG01", "WTG02"], variables=limits(*VARIABLES))
    stats = result.stats.to_pylist()
    for row in result.quality.to_pylist():
        mine = [
            s
            for s in stats
            if (s["turbine_id"], s["variable"]) == (row["turbine_id"], row["variable"])
        ]
        assert row["expected"] == 1440
        assert sum(s["count"] for s in mine) == row["valid"]
        rejected = row["off_grid"] + row["out_of_range"] + row["frozen"] + row["spike"]
        assert sum(s["rejected"] for s in mine) == rejected
        assert (
            row["valid"] + row["missing"] + row["out_of_range"] + row["frozen"] + row["spike"]
            == 1440
        )


def test_a_range_off_midnight_or_a_missing_column_is_refused():
    raw = raw_table([])
    with pytest.raises(InvalidInputError, match="not whole UTC days"):
        transform(
            raw,
            START,
            START + timedelta(hours=1),
            turbines=["WTG01"],
            variables=limits("wind_speed"),
        )
    with pytest.raises(InvalidInputError, match="no column power"):
        transform(raw, START, END, turbines=["WTG01"], variables=limits("power"))


def test_an_empty_range_gives_empty_tables():
    result = transform(
        raw_table([]), START, START, turbines=["WTG01"], variables=limits("wind_speed")
    )
    assert result.stats.num_rows == result.quality.num_rows == 0
    assert result.stats.schema == STATS_SCHEMA


DIRECTIONS = with_derived(
    {
        "wind_direction": Variable(
            "wind_direction", "°", None, 0.0, 360.0, 90.0, kind="circular", frozen_exempt=()
        ),
        "nacelle_position": Variable(
            "nacelle_position", "°", None, 0.0, 360.0, 30.0, kind="circular",
            frozen_minutes=None, frozen_exempt=(),
        ),
    }
)  # fmt: skip


def test_yaw_error_alone_reads_its_two_columns_and_writes_only_itself():
    rows = [
        ("WTG01", START + timedelta(minutes=i), wind, nacelle)
        for i, (wind, nacelle) in enumerate(
            [(350.0, 10.0), (355.0, 5.0), (5.0, 355.0), (None, 0.0), (10.0, None), (20.0, 200.0)]
        )
    ]
    raw = raw_table(rows, variables=("wind_direction", "nacelle_position"))
    wanted = {"yaw_error": DIRECTIONS["yaw_error"]}
    result = transform(raw, START, END, turbines=["WTG01"], variables=wanted)
    assert set(result.stats.column("variable").to_pylist()) == {"yaw_error"}
    first = result.stats.slice(0, 1).to_pylist()[0]
    # -20, -10, +10 and -180 (20 - 200): the minutes where both are present
    assert (first["count"], first["rejected"]) == (4, 0)
    assert -11 < first["mean"] < -10  # the mean of -20, -10, 10, 180 on the circle: -10.1°
    assert (first["min"], first["max"]) == pytest.approx((-180.0, 10.0))
    (quality,) = result.quality.to_pylist()
    assert (quality["variable"], quality["valid"], quality["missing"]) == ("yaw_error", 4, 1436)

    with pytest.raises(InvalidInputError, match="no column nacelle_position"):
        transform(raw.drop(["nacelle_position"]), START, END, turbines=["WTG01"], variables=wanted)


def test_a_direction_the_api_does_not_call_circular_is_linear_as_before():
    rows = [("WTG01", START + timedelta(minutes=i), v) for i, v in enumerate([350.0, 10.0])]
    raw = raw_table(rows, variables=("wind_direction",))
    plain = {"wind_direction": Variable("wind_direction", "°", None, 0.0, 360.0, 90.0)}
    linear = transform(raw, START, END, turbines=["WTG01"], variables=plain, qc=False)
    assert linear.stats.slice(0, 1).to_pylist()[0]["mean"] == 180.0
    angles = {"wind_direction": DIRECTIONS["wind_direction"]}
    circular = transform(raw, START, END, turbines=["WTG01"], variables=angles, qc=False)
    mean = circular.stats.slice(0, 1).to_pylist()[0]["mean"]
    assert min(mean, 360 - mean) < 1e-9  # 0°, on either side of north
