"""Asset checks, one day at a time: pass on clean data, fail with counts on faulty data, block
where they must."""

import dagster as dg
import pyarrow as pa
import pytest
import sqlalchemy as sa

from wind_pipeline.defs import checks
from wind_pipeline.defs.assets import raw_readings, signal_data, with_selection
from wind_pipeline.defs.io_managers import StoredDays
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline.etl import arrays, audit
from wind_pipeline.etl.calendar import to_utc_us
from wind_pipeline.etl.catalogue import Variable
from wind_pipeline.etl.extract import raw_schema
from wind_pipeline.etl.pipeline import Selection
from wind_pipeline.etl.transform import transform
from wind_pipeline_tests.conftest import DAY, target_row_count
from wind_pipeline_tests.dagster_support import resources
from wind_pipeline_tests.loads import load
from wind_pipeline_tests.reference import day_bounds

KEY = DAY.isoformat()
LIMITS = {
    "wind_speed": Variable("wind_speed", "m/s", None, 0.0, 40.0, 10.0),
    "power": Variable("power", "kW", None, 0.0, 3000.0, 1500.0),
}


def raw_day(values: dict[str, list[float | None]], turbines=("WTG01",)) -> pa.Table:
    """A day of one-minute readings per turbine (the same values for each turbine)."""
    start = to_utc_us(day_bounds(DAY)[0])
    n = len(next(iter(values.values())))
    stamps = [start + minute * 60_000_000 for minute in range(n)]
    columns = {
        "turbine_id": [t for t in turbines for _ in range(n)],
        "timestamp": stamps * len(turbines),
        **{name: list(column) * len(turbines) for name, column in values.items()},
    }
    return pa.Table.from_pydict(columns, schema=raw_schema(list(values)))


def stats_of(raw: pa.Table, turbines=("WTG01",)):
    return transform(raw, *day_bounds(DAY), turbines=turbines, variables=LIMITS)


def clean(n: int = 1440) -> dict[str, list[float]]:
    return {
        "wind_speed": [5.0 + (i % 7) * 0.1 for i in range(n)],
        "power": [1000.0 + (i % 11) for i in range(n)],
    }


def test_clean_days_pass_every_check() -> None:
    raw = raw_day(clean(), turbines=("WTG01", "WTG02"))
    result = stats_of(raw, ("WTG01", "WTG02"))
    day = audit.raw_counts(raw, ("WTG01", "WTG02"), LIMITS)
    q = audit.quality_counts(result.quality, ("WTG01", "WTG02"), tuple(LIMITS))

    found = [
        checks.readings_complete(DAY, day),
        checks.readings_in_physical_range(DAY, day),
        checks.readings_not_frozen(DAY, day),
        checks.windows_complete(DAY, result.stats, ("WTG01", "WTG02"), tuple(LIMITS)),
        checks.statistics_consistent(DAY, result.stats),
        checks.rejected_share(DAY, q, 5.0),
    ]

    assert all(e.passed for e in found), {e.check_name: e.metadata for e in found}
    assert {e.partition for e in found} == {KEY}
    assert found[0].metadata["expected_rows"].value == 2 * 1440
    assert found[3].metadata["expected_windows_per_variable"].value == 2 * 144


def test_source_faults_warn_with_counts_per_variable_and_turbine() -> None:
    values = clean()
    values["wind_speed"][100] = 45.0  # inside the old 0-60, outside the API's 0-40
    values["power"][200:215] = [1234.5] * 15  # frozen inside the range
    values["power"][600:630] = [3000.0] * 30  # clipping at rated power: not frozen
    values["wind_speed"][900] = None
    raw = raw_day(values).slice(0, 1439)  # and the last minute is absent
    day = audit.raw_counts(raw, ("WTG01", "WTG02"), LIMITS)  # WTG02 sent nothing

    complete = checks.readings_complete(DAY, day)
    in_range = checks.readings_in_physical_range(DAY, day)
    frozen = checks.readings_not_frozen(DAY, day)

    for found in (complete, in_range, frozen):
        assert not found.passed
        assert found.severity == dg.AssetCheckSeverity.WARN
        assert found.partition == KEY
        assert KEY in found.description
    assert complete.metadata["missing_rows"].value == 1 + 1440
    assert complete.metadata["missing_rows_by_turbine"].value == {"WTG01": 1, "WTG02": 1440}
    assert complete.metadata["null_readings"].value == {"wind_speed": 1, "power": 0}
    assert in_range.metadata["out_of_range"].value == {"wind_speed": 1, "power": 0}
    assert in_range.metadata["out_of_range_by_turbine"].value == {"WTG01": 1}
    assert in_range.metadata["ranges"].value["wind_speed"] == [0.0, 40.0]
    assert frozen.metadata["frozen_readings"].value == {"wind_speed": 0, "power": 15}


def test_the_rejected_share_names_the_day_and_its_counts() -> None:
    values = clean()
    values["wind_speed"][:50] = [99.0] * 50  # out of range
    values["power"][300:400] = [1234.5] * 100  # frozen
    raw = raw_day(values, turbines=("WTG01", "WTG02"))
    result = stats_of(raw, ("WTG01", "WTG02"))
    q = audit.quality_counts(result.quality, ("WTG01", "WTG02"), tuple(LIMITS))

    share = checks.rejected_share(DAY, q, 5.0)
    relaxed = checks.rejected_share(DAY, q, 10.0)

    present = 2 * 2 * 1440
    assert not share.passed and relaxed.passed
    assert share.severity == dg.AssetCheckSeverity.WARN
    assert share.metadata["rejected_readings"].value == 2 * 150
    assert share.metadata["rejected_percent"].value == round(100 * 300 / present, 2)
    assert share.metadata["rejected_by_reason"].value == {
        "off_grid": 0,
        "out_of_range": 100,
        "frozen": 200,
        "spike": 0,
    }
    assert share.metadata["rejected_by_turbine"].value["WTG02"]["rejected"] == 150
    assert share.description.startswith(f"{KEY}: 5.21% of {present} readings rejected")
    assert "out_of_range 100, frozen 200" in share.description


def test_inconsistent_statistics_are_counted_by_rule() -> None:
    stats = stats_of(raw_day(clean())).stats
    assert checks.statistics_consistent(DAY, stats).passed
    columns = {name: stats.column(name).to_pylist() for name in stats.column_names}
    columns["min"][0] = columns["max"][0] + 1  # min above mean
    columns["std"][1] = None  # std missing where count >= 2
    columns["count"][2] = 11
    broken = pa.Table.from_pydict(columns, schema=stats.schema)

    result = checks.statistics_consistent(DAY, broken)

    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["violations"].value == {
        "min_above_mean": 1,
        "mean_above_max": 0,
        "negative_std": 0,
        "count_out_of_0_10": 1,
        "negative_rejected": 0,
        "nulls_not_matching_count": 1,
    }


def test_a_missing_or_duplicated_window_is_counted() -> None:
    stats = stats_of(raw_day(clean())).stats
    broken = pa.concat_tables([stats.slice(1), stats.slice(5, 1)])

    result = checks.windows_complete(DAY, broken, ("WTG01",), tuple(LIMITS))

    assert not result.passed
    assert result.metadata["missing_windows"].value == {"wind_speed": 0, "power": 1}
    assert result.metadata["duplicated_windows"].value == 1


def test_target_rows_differing_from_the_stats_fail_with_the_signals(engine) -> None:
    stats = stats_of(raw_day(clean())).stats
    load(engine, stats, LIMITS)
    actual = checks.target_totals(engine, ("WTG01",), tuple(LIMITS), DAY)
    assert checks.target_matches_stats(DAY, stats, actual).passed

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM data WHERE timestamp = :t AND signal_id = "
                "(SELECT id FROM signal WHERE name = 'WTG01.wind_speed_mean')"
            ),
            {"t": day_bounds(DAY)[0]},
        )
    actual = checks.target_totals(engine, ("WTG01",), tuple(LIMITS), DAY)
    result = checks.target_matches_stats(DAY, stats, actual)

    assert not result.passed
    assert result.metadata["target_rows"].value == result.metadata["expected_rows"].value - 1
    assert result.metadata["differing_signals"].value == ["WTG01.wind_speed_mean"]
    assert KEY in result.description


@pytest.fixture
def materialize(serve_api, target_url, tmp_path):
    api_url = serve_api()

    def run(assets, **kwargs):
        return dg.materialize(
            list(assets),
            resources=resources(api_url, target_url, tmp_path / "storage"),
            instance=dg.DagsterInstance.ephemeral(),
            partition_key=KEY,
            **kwargs,
        )

    return run


def test_a_failing_blocking_check_stops_the_load(seed_source, materialize, target_url) -> None:
    seed_source(days=1)

    @dg.asset(
        name="ten_minute_stats",
        partitions_def=daily_partitions,
        check_specs=checks.TEN_MINUTE_STATS_CHECKS,
    )
    def stats_missing_a_window(context: dg.AssetExecutionContext, raw_readings: StoredDays):
        ((key, raw),) = list(raw_readings)
        turbines = ("WTG01",)
        stats = transform(raw, *day_bounds(DAY), turbines=turbines, variables=LIMITS).stats
        stats = with_selection(stats.slice(1), Selection(turbines, LIMITS))
        yield dg.Output([(key, stats)])
        yield from checks.check_events(
            context,
            [
                checks.windows_complete(DAY, stats, turbines, tuple(LIMITS)),
                checks.statistics_consistent(DAY, stats),
                checks.evaluation(checks.TEN_MINUTE_STATS, "rejected_share", DAY, True, {}),
            ],
        )

    result = materialize((raw_readings, stats_missing_a_window, signal_data), raise_on_error=False)

    assert not result.success
    found = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not found["windows_complete"].passed
    assert found["windows_complete"].severity == dg.AssetCheckSeverity.ERROR
    assert found["windows_complete"].metadata["missing_windows"].value["power"] == 1
    assert not result.asset_materializations_for_node("signal_data")
    assert target_row_count(target_url, *day_bounds(DAY)) == 0


def test_turbine_codes_follow_the_selection_order() -> None:
    assert arrays.codes(pa.array(["b", "a", "c"]), ("a", "b")).tolist() == [1, 0, -1]
    encoded = pa.array(["b", "a", "b"]).dictionary_encode()
    assert arrays.codes(encoded, ("a", "b")).tolist() == [1, 0, 1]
