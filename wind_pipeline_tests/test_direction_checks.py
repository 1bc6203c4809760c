"""The directions end to end (README "Directions"): ``wind-etl`` and Dagster load the same rows for
the circular variables, equal to the SQL reference; ``--variables all``; the two Dagster checks
of circular means and the day's mean yaw error per turbine in the metadata.
"""

import math
import os
import subprocess
import sys
from datetime import timedelta

import dagster as dg
import pyarrow as pa
import pytest
import sqlalchemy as sa

from wind_pipeline.defs import checks, directions
from wind_pipeline.defs.assets import (
    raw_readings,
    selection_of,
    signal_data,
    ten_minute_stats,
    with_selection,
)
from wind_pipeline.defs.io_managers import StoredDays
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.etl.calendar import to_utc_us
from wind_pipeline.etl.catalogue import YAW_ERROR_DESCRIPTION, Variable, with_derived
from wind_pipeline.etl.extract import raw_schema
from wind_pipeline.etl.pipeline import Selection
from wind_pipeline.etl.transform import STATS_SCHEMA, transform
from wind_pipeline_tests.conftest import DAY, target_row_count
from wind_pipeline_tests.dagster_support import resources
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    default_limits,
    reference_stats,
    target_stats,
)

ASSETS = [raw_readings, ten_minute_stats, signal_data]
KEY = DAY.isoformat()
DIRECTIONS = ("wind_direction", "nacelle_position", "yaw_error")
ALL = ("wind_speed", "power", "ambient_temperature", *DIRECTIONS)
LIMITS = with_derived(
    {
        "wind_direction": Variable(
            "wind_direction", "°", None, 0.0, 360.0, 90.0, kind="circular", frozen_exempt=()
        ),
        "nacelle_position": Variable(
            "nacelle_position", "°", None, 0.0, 360.0, 30.0, kind="circular", frozen_minutes=None
        ),
    }
)
SELECTION = Selection(("WTG01",), LIMITS)


def stored(url: str) -> list[tuple]:
    """Every stored value of the day, bit for bit (-0.0 differs from 0.0 here)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.name, d.timestamp, d.value FROM data d"
                " JOIN signal s ON s.id = d.signal_id"
                " WHERE d.timestamp >= :start AND d.timestamp < :end ORDER BY 1, 2"
            ),
            dict(zip(("start", "end"), day_bounds(DAY), strict=True)),
        ).all()
    engine.dispose()
    return [(name, stamp, value.hex()) for name, stamp, value in rows]


def signals(url: str) -> dict[str, tuple[str | None, str]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, unit, description FROM signal")).all()
    engine.dispose()
    return {name: (unit, description) for name, unit, description in rows}


def materialize(api_url: str, target_url: str, storage, variables: list[str]):
    return dg.materialize(
        ASSETS,
        resources=resources(api_url, target_url, storage),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=KEY,
        run_config={"ops": {"raw_readings": {"config": {"variables": variables}}}},
    )


def circular_mean(degrees: list[float]) -> float:
    s = sum(math.sin(math.radians(d)) for d in degrees) / len(degrees)
    c = sum(math.cos(math.radians(d)) for d in degrees) / len(degrees)
    return math.degrees(math.atan2(s, c))


def test_wind_etl_and_dagster_write_the_reference_rows_of_the_directions(
    seed_source, serve_api, make_database, source_url, target_url, tmp_path
) -> None:
    from wind_pipeline.cli import main

    seed_source(days=1, turbines=2, faults=True)
    api_url = serve_api()
    by_cli = make_database()

    asked = ",".join(DIRECTIONS)
    assert main([KEY, "--variables", asked, "--api-url", api_url, "--database-url", by_cli]) == 0
    result = materialize(api_url, target_url, tmp_path / "storage", list(DIRECTIONS))

    assert result.success
    start, end = day_bounds(DAY)
    expected = reference_stats(source_url, start, end, variables=DIRECTIONS)
    assert {row[0] for row in expected} == {"WTG01", "WTG02"}
    assert sum(row[8] for row in expected if row[1] == "wind_direction") > 0  # faults rejected
    assert_stats_equal(target_stats(by_cli, start, end), expected)
    assert stored(target_url) == stored(by_cli)
    assert len(stored(by_cli)) > 2 * 3 * 144 * 4  # both turbines, three variables, ≥ 4 stats

    found = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert found["circular_means_in_range"].passed
    assert found["circular_means_in_range"].metadata["means_out_of_range"].value == {
        name: 0 for name in DIRECTIONS
    }
    assert found["circular_means_meaningful"].passed  # the generator's vanes turn gently
    assert found["circular_means_meaningful"].metadata["wide_turbine_variables"].value == 0
    # The raw checks judge the two source columns: yaw_error has none in the raw readings.
    ranges = found["readings_in_physical_range"].metadata["ranges"].value
    assert set(ranges) == {"wind_direction", "nacelle_position"}

    metadata = result.asset_materializations_for_node("ten_minute_stats")[0].metadata
    for turbine in ("WTG01", "WTG02"):
        means = [r[3] for r in expected if r[:2] == (turbine, "yaw_error") and r[3] is not None]
        value = metadata[f"mean_yaw_error_{turbine}"].value
        assert isinstance(value, float)
        assert value == pytest.approx(circular_mean(means), abs=1e-6)

    described = signals(by_cli)
    assert "Yamartino" in described["WTG01.wind_direction_std"][1]
    assert "sample standard deviation" not in described["WTG01.yaw_error_std"][1]
    unit, text = described["WTG01.yaw_error_mean"]
    assert unit == default_limits()["wind_direction"].unit
    assert YAW_ERROR_DESCRIPTION in text and "circular mean" in text
    assert described == signals(target_url)


def wind_etl(*args: str, api_url: str, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONNECTOR_API_URL": api_url, "TARGET_DATABASE_URL": database_url}
    env.pop("CONNECTOR_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "wind_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_variables_all_loads_every_variable_in_wind_etl_and_dagster(
    seed_source, serve_api, make_database, source_url, target_url, tmp_path
) -> None:
    seed_source(days=1, turbines=2, faults=True)
    api_url = serve_api()
    by_cli = make_database()

    done = wind_etl(KEY, "--variables", "all", api_url=api_url, database_url=by_cli)
    assert done.returncode == 0, done.stderr
    result = materialize(api_url, target_url, tmp_path / "storage", ["all"])

    assert result.success
    start, end = day_bounds(DAY)
    assert_stats_equal(
        target_stats(by_cli, start, end), reference_stats(source_url, start, end, variables=ALL)
    )
    assert stored(target_url) == stored(by_cli)
    assert {name.split(".")[1].rsplit("_", 1)[0] for name in signals(by_cli)} == set(ALL)

    mixed = wind_etl(KEY, "--variables", "all,power", api_url=api_url, database_url=by_cli)
    assert mixed.returncode == 2 and "'all' cannot be combined" in mixed.stderr
    assert "`all`" in wind_etl("--help", api_url=api_url, database_url=by_cli).stdout


# --- the checks on hand-made days -------------------------------------------------------------


def raw_day(wind: list[float], nacelle: list[float], turbines=("WTG01",)) -> pa.Table:
    start = to_utc_us(day_bounds(DAY)[0])
    stamps = [start + m * 60_000_000 for m in range(len(wind))]
    return pa.Table.from_pydict(
        {
            "turbine_id": [t for t in turbines for _ in stamps],
            "timestamp": stamps * len(turbines),
            "wind_direction": wind * len(turbines),
            "nacelle_position": nacelle * len(turbines),
        },
        schema=raw_schema(["wind_direction", "nacelle_position"]),
    )


def steady(minutes: int = 1440) -> list[float]:
    """A vane wandering around 203° (never 10 equal readings in a row)."""
    return [203.0 + ((m % 7) - 3) * 0.5 for m in range(minutes)]


def stats_of(raw: pa.Table, turbines=("WTG01",)) -> pa.Table:
    return transform(raw, *day_bounds(DAY), turbines=turbines, variables=LIMITS).stats


def test_a_day_of_sensible_means_passes_and_gives_each_turbines_yaw_error() -> None:
    stats = stats_of(raw_day(steady(), [200.0] * 1440, ("WTG01", "WTG02")), ("WTG01", "WTG02"))
    selection = Selection(("WTG01", "WTG02"), LIMITS)

    found = directions.evaluations(DAY, stats, selection, directions.MAX_WIDE_PERCENT)

    assert all(e.passed for e in found), [e.metadata for e in found]
    assert [e.check_name for e in found] == [directions.IN_RANGE, directions.MEANINGFUL]
    assert {e.partition for e in found} == {KEY}
    means = [
        row["mean"]
        for row in stats.to_pylist()
        if row["variable"] == "yaw_error" and row["turbine_id"] == "WTG01"
    ]
    assert len(means) == 144
    metadata = directions.yaw_metadata(stats, selection)
    assert set(metadata) == {"mean_yaw_error_WTG01", "mean_yaw_error_WTG02"}
    assert metadata["mean_yaw_error_WTG01"] == pytest.approx(circular_mean(means), abs=1e-6)
    assert metadata["mean_yaw_error_WTG01"] == pytest.approx(3.0, abs=0.1)
    without = {k: v for k, v in LIMITS.items() if k != "yaw_error"}
    assert directions.yaw_metadata(stats, Selection(("WTG01",), without)) == {}


def test_a_day_with_meaningless_means_warns_per_turbine_and_variable() -> None:
    # 20 windows (200 minutes) of a vane turning 60° a minute: each window's readings go all
    # round (no spike: steps of 60° < max_step 90°, neighbours on opposite sides).
    wind = steady()
    for m in range(200, 400):
        wind[m] = (203.0 + 60.0 * (m - 199)) % 360.0
    stats = stats_of(raw_day(wind, [200.0] * 1440))

    warned = directions.circular_means_meaningful(DAY, stats, SELECTION, 10.0)

    assert not warned.passed
    assert warned.severity == dg.AssetCheckSeverity.WARN and not warned.blocking
    wide = warned.metadata["wide"].value
    assert {(row["turbine"], row["variable"]) for row in wide} == {
        ("WTG01", "wind_direction"),
        ("WTG01", "yaw_error"),
    }
    assert all((row["wide_windows"], row["windows"]) == (20, 144) for row in wide)
    assert wide[0]["wide_percent"] == round(100 * 20 / 144, 2)
    assert KEY in warned.description and "WTG01 wind_direction 13.89%" in warned.description
    assert directions.circular_means_meaningful(DAY, stats, SELECTION, 15.0).passed
    # one wide window is enough with a threshold of 0
    one = steady()
    for m in range(200, 210):
        one[m] = (203.0 + 60.0 * (m - 199)) % 360.0
    assert not directions.circular_means_meaningful(
        DAY, stats_of(raw_day(one, [200.0] * 1440)), SELECTION, 0.0
    ).passed


def stats_table(rows: list[tuple[str, int, float | None]]) -> pa.Table:
    """A STATS table by hand: (variable, window, mean) of WTG01, min = max = mean."""
    start = day_bounds(DAY)[0]
    return pa.Table.from_pylist(
        [
            {
                "turbine_id": "WTG01",
                "timestamp": start + timedelta(minutes=10 * window),
                "variable": variable,
                "mean": mean,
                "min": mean,
                "max": mean,
                "std": None,
                "count": 0 if mean is None else 1,
                "rejected": 0,
            }
            for variable, window, mean in rows
        ],
        schema=STATS_SCHEMA,
    )


def test_a_circular_mean_out_of_its_range_fails_the_blocking_check() -> None:
    edges = [
        ("wind_direction", 0, 0.0),
        ("wind_direction", 1, 359.999999),
        ("wind_direction", 2, None),
        ("nacelle_position", 0, 359.5),
        ("yaw_error", 0, -180.0),
        ("yaw_error", 1, 179.9),
    ]
    assert directions.circular_means_in_range(DAY, stats_table(edges), SELECTION).passed

    broken = [
        *edges,
        ("wind_direction", 3, 360.0),
        ("nacelle_position", 1, -0.5),
        ("yaw_error", 2, 180.0),
        ("yaw_error", 3, 200.0),
    ]
    failed = directions.circular_means_in_range(DAY, stats_table(broken), SELECTION)

    assert not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.ERROR and failed.blocking
    assert failed.metadata["means_out_of_range"].value == {
        "wind_direction": 1,
        "nacelle_position": 1,
        "yaw_error": 2,
    }
    assert failed.metadata["ranges"].value["yaw_error"] == [-180.0, 180.0]
    assert KEY in failed.description


def test_the_two_checks_are_declared_on_ten_minute_stats_per_partition() -> None:
    names = {spec.name: spec for spec in checks.TEN_MINUTE_STATS_CHECKS}
    assert names[directions.IN_RANGE].blocking
    assert not names[directions.MEANINGFUL].blocking
    assert names[directions.IN_RANGE].partitions_def is not None
    assert dg.AssetCheckKey(checks.TEN_MINUTE_STATS, directions.MEANINGFUL) in checks.SPECS


def test_a_mean_out_of_range_stops_the_load(seed_source, serve_api, target_url, tmp_path) -> None:
    seed_source(days=1)

    @dg.asset(
        name="ten_minute_stats",
        partitions_def=daily_partitions,
        check_specs=checks.TEN_MINUTE_STATS_CHECKS,
    )
    def stats_with_a_mean_of_360(context: dg.AssetExecutionContext, raw_readings: StoredDays):
        ((key, raw),) = list(raw_readings)
        selection = selection_of(raw)
        stats = transform(
            raw, *day_bounds(DAY), turbines=selection.turbines, variables=selection.limits
        ).stats
        rows = stats.to_pylist()
        rows[0]["mean"] = 360.0  # WTG01's first wind_direction window
        stats = with_selection(pa.Table.from_pylist(rows, schema=STATS_SCHEMA), selection)
        yield dg.Output([(key, stats)])
        yield from checks.check_events(
            context, directions.evaluations(DAY, stats, selection, directions.MAX_WIDE_PERCENT)
        )

    result = dg.materialize(
        [raw_readings, stats_with_a_mean_of_360, signal_data],
        resources=resources(serve_api(), target_url, tmp_path / "storage"),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=KEY,
        run_config={"ops": {"raw_readings": {"config": {"variables": ["wind_direction"]}}}},
        raise_on_error=False,
    )

    assert not result.success
    found = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not found[directions.IN_RANGE].passed
    assert found[directions.IN_RANGE].severity == dg.AssetCheckSeverity.ERROR
    assert found[directions.IN_RANGE].metadata["means_out_of_range"].value == {"wind_direction": 1}
    assert found[directions.MEANINGFUL].passed
    assert not result.asset_materializations_for_node("signal_data")
    assert target_row_count(target_url, *day_bounds(DAY)) == 0
