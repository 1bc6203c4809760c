"""The three assets end to end: the real API over HTTP, the real target PostgreSQL, a fleet.

Target values are compared with the SQL reference (docs/rules.md written in PostgreSQL over
the source table), an independent computation of what the pipeline must write.
"""

from datetime import date

import dagster as dg
import pytest
import sqlalchemy as sa

from wind_pipeline.defs.assets import (
    raw_readings,
    signal_data,
    ten_minute_stats,
    terminal_errors_fail_once,
)
from wind_pipeline.etl.errors import ApiUnavailableError, DatabaseError
from wind_pipeline_tests.conftest import DAY, target_row_count
from wind_pipeline_tests.dagster_support import (
    ROWS_PER_TURBINE_DAY,
    range_tags,
    resources,
)
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

ASSETS = [raw_readings, ten_minute_stats, signal_data]
FLEET = ("WTG01", "WTG02", "WTG03")


@pytest.fixture
def run_assets(serve_api, target_url, tmp_path):
    """``run_assets(**materialize_kwargs)`` on one instance, against the test's servers."""
    instance = dg.DagsterInstance.ephemeral()
    api_url = serve_api()

    def run(**kwargs) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            resources=resources(api_url, target_url, tmp_path / "storage"),
            instance=instance,
            **kwargs,
        )

    run.instance = instance
    return run


def config(raw: dict | None = None, stats: dict | None = None) -> dict:
    ops = {}
    if raw:
        ops["raw_readings"] = {"config": raw}
    if stats:
        ops["ten_minute_stats"] = {"config": stats}
    return {"ops": ops}


def evaluations(
    result: dg.ExecuteInProcessResult,
) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}


def test_one_partition_of_a_faulty_fleet_equals_the_sql_reference(
    seed_source, run_assets, source_url, target_url, tmp_path
) -> None:
    seed_source(days=2, turbines=3, faults=True)  # the next day too: nothing may spill into it

    result = run_assets(partition_key="2024-01-01")

    assert result.success
    start, end = day_bounds(DAY)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )
    assert target_row_count(target_url, *day_bounds(date(2024, 1, 2))) == 0
    (loaded,) = result.asset_materializations_for_node("signal_data")
    assert loaded.partition == "2024-01-01"
    assert loaded.metadata["rows_written"].value == len(target_stats_values(target_url, start, end))
    raw = result.asset_materializations_for_node("raw_readings")[0].metadata
    assert raw["expected_rows"].value == 3 * 1440
    assert raw["turbines"].value == 3
    assert raw["first_timestamp"].value.startswith("2024-01-01T00:0")
    stats = result.asset_materializations_for_node("ten_minute_stats")[0].metadata
    reference = reference_stats(source_url, start, end)
    rejected = sum(row[8] for row in reference)
    present = rejected + sum(row[7] for row in reference)
    assert stats["rejected_percent"].value == round(100 * rejected / present, 2)
    assert isinstance(stats["rejected_percent_wind_speed"].value, float)
    assert isinstance(stats["rejected_percent_spike"].value, float)
    assert [row.data["turbine"] for row in stats["per_turbine"].value.records] == list(FLEET)
    assert (tmp_path / "storage" / "ten_minute_stats" / "2024-01-01.parquet").exists()
    found = evaluations(result)
    assert {name for name, _ in found} == {spec.name for spec in all_check_specs()}
    assert {day for _, day in found} == {"2024-01-01"}


def target_stats_values(target_url: str, start, end) -> list[tuple]:
    """Every stored value of the range (signal, timestamp, value)."""
    engine = sa.create_engine(target_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.name, d.timestamp, d.value FROM data d "
                "JOIN signal s ON s.id = d.signal_id "
                "WHERE d.timestamp >= :start AND d.timestamp < :end ORDER BY 1, 2"
            ),
            {"start": start, "end": end},
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_wind_etl_and_dagster_write_identical_rows_for_a_faulty_day(
    seed_source, serve_api, make_database, target_url, tmp_path
) -> None:
    from wind_pipeline.cli import main

    seed_source(days=1, turbines=2, faults=True)
    api_url = serve_api()
    by_cli = make_database()

    assert main(["2024-01-01", "--api-url", api_url, "--database-url", by_cli]) == 0
    result = dg.materialize(
        ASSETS,
        resources=resources(api_url, target_url, tmp_path / "storage"),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="2024-01-01",
    )

    assert result.success
    start, end = day_bounds(DAY)
    written = target_stats_values(by_cli, start, end)
    assert len(written) > 2 * 144 * 2 * 2  # both turbines, both variables, several statistics
    bits = [(name, stamp, value.hex()) for name, stamp, value in written]  # -0.0 != 0.0 here
    assert [(n, t, v.hex()) for n, t, v in target_stats_values(target_url, start, end)] == bits


def test_a_range_is_one_run_with_a_materialization_and_check_results_per_day(
    seed_source, run_assets, source_url, target_url
) -> None:
    seed_source(days=3, turbines=3, faults=True)
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]

    result = run_assets(
        tags=range_tags(days[0], days[-1]),
        run_config=config(stats={"max_rejected_percent": 0.5}),
    )

    assert result.success  # warnings do not stop a run
    start, end = day_bounds(DAY, days=3)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )
    for asset in ("raw_readings", "ten_minute_stats", "signal_data"):
        key = dg.AssetKey(asset)
        assert run_assets.instance.get_materialized_partitions(key) == set(days)
        records = run_assets.instance.fetch_materializations(key, limit=10).records
        assert {record.run_id for record in records} == {result.run_id}  # one run did it all
    # One result per check and day, stored per partition as well.
    found = evaluations(result)
    assert set(found) == {(spec.name, day) for spec in all_check_specs() for day in days}
    history = run_assets.instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("ten_minute_stats"), "rejected_share"), limit=10
    )
    assert sorted(record.partition for record in history) == days
    # Each day's share, from the SQL reference; a faulty day's warning names it and its counts.
    for day in days:
        reference = reference_stats(source_url, *day_bounds(date.fromisoformat(day)))
        rejected = sum(row[8] for row in reference)
        share = found[("rejected_share", day)]
        assert share.metadata["rejected_readings"].value == rejected
        assert share.severity == dg.AssetCheckSeverity.WARN
        assert share.passed == (share.metadata["rejected_percent"].value <= 0.5)
        if not share.passed:
            assert day in share.description
            assert (
                f"{rejected}" in share.description
                or str(share.metadata["present_readings"].value) in share.description
            )
            by_reason = share.metadata["rejected_by_reason"].value
            assert sum(by_reason.values()) == rejected
            assert all(f"{reason} {n}" in share.description for reason, n in by_reason.items())
            assert set(share.metadata["rejected_by_turbine"].value) <= set(FLEET)
    assert not all(found[("rejected_share", day)].passed for day in days)
    # Each day's materialization describes that day, not the whole range.
    loaded = {
        m.partition: m.metadata for m in result.asset_materializations_for_node("signal_data")
    }
    for day in days:
        rows = len(target_stats_values(target_url, *day_bounds(date.fromisoformat(day))))
        assert loaded[day]["rows_written"].value == rows


def test_turbines_in_run_config_limit_the_load_and_leave_the_others_alone(
    seed_source, run_assets, source_url, target_url
) -> None:
    seed_source(days=1, turbines=3)
    start, end = day_bounds(DAY)
    assert run_assets(partition_key="2024-01-01").success
    before = {t: target_row_count(target_url, start, end, turbine=t) for t in FLEET}
    engine = sa.create_engine(target_url)
    with engine.begin() as conn:  # WTG02's rows of the day are wrong now; the others stay right
        conn.execute(
            sa.text(
                "DELETE FROM data USING signal s "
                "WHERE s.id = data.signal_id AND s.turbine = 'WTG02'"
            )
        )
    engine.dispose()

    result = run_assets(partition_key="2024-01-01", run_config=config(raw={"turbines": ["WTG02"]}))

    assert result.success
    assert {t: target_row_count(target_url, start, end, turbine=t) for t in FLEET} == before
    assert result.asset_materializations_for_node("raw_readings")[0].metadata["turbines"].value == 1
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )


def test_a_reading_of_45_m_s_is_out_of_range_as_the_api_says(
    seed_source, run_assets, source_url, target_url
) -> None:
    seed_source(days=1)
    engine = sa.create_engine(source_url)
    with engine.begin() as conn:  # inside the pipeline's old 0-60 m/s, outside the API's 0-40
        conn.execute(
            sa.text("UPDATE data SET wind_speed = 45 WHERE timestamp = '2024-01-01 06:03Z'")
        )
    engine.dispose()

    result = run_assets(partition_key="2024-01-01")

    assert result.success
    found = evaluations(result)
    in_range = found[("readings_in_physical_range", "2024-01-01")]
    assert not in_range.passed
    assert in_range.metadata["out_of_range"].value == {"wind_speed": 1, "power": 0}
    assert in_range.metadata["ranges"].value["wind_speed"] == [0.0, 40.0]
    start, end = day_bounds(DAY)
    stored = {row[:3]: row for row in target_stats(target_url, start, end)}
    window = next(
        key for key in stored if key[1] == "wind_speed" and key[2].hour == 6 and key[2].minute == 0
    )
    assert stored[window][8] == 1  # rejected
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )


def test_quality_control_off_gives_the_plain_statistics(
    seed_source, run_assets, source_url, target_url
) -> None:
    seed_source(days=1, faults=True)

    result = run_assets(
        partition_key="2024-01-01", run_config=config(stats={"quality_control": False})
    )

    assert result.success
    start, end = day_bounds(DAY)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end, qc=False)
    )


def test_rematerializing_a_partition_leaves_one_copy_of_its_rows(
    seed_source, run_assets, target_url
) -> None:
    seed_source(days=1)

    assert run_assets(partition_key="2024-01-01").success
    assert run_assets(partition_key="2024-01-01").success

    assert target_row_count(target_url, *day_bounds(DAY)) == ROWS_PER_TURBINE_DAY


def test_a_day_without_source_data_fails_once_with_a_clear_message(
    seed_source, run_assets, target_url
) -> None:
    seed_source(days=1)

    result = run_assets(partition_key="2024-01-05", raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no source data for 2024-01-05" in failure.step_failure_data.error.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert target_row_count(target_url, *day_bounds(date(2024, 1, 5))) == 0


def test_an_unknown_variable_fails_once_naming_the_known_ones(seed_source, run_assets) -> None:
    seed_source(days=1)

    result = run_assets(
        partition_key="2024-01-01",
        run_config=config(raw={"variables": ["wind_speed", "rotor_rpm"]}),
        raise_on_error=False,
    )

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert "rotor_rpm" in message
    assert "wind_speed" in message  # what is allowed is named
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_variables_are_normalised_once(seed_source, run_assets, source_url, target_url) -> None:
    seed_source(days=1)
    variables = ["wind_speed, power", " power", "wind_speed"]

    assert run_assets(
        partition_key="2024-01-01", run_config=config(raw={"variables": variables})
    ).success

    start, end = day_bounds(DAY)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )


def test_allow_empty_writes_zero_counts(seed_source, run_assets, target_url) -> None:
    seed_source(days=1)

    result = run_assets(partition_key="2024-01-05", run_config=config(raw={"allow_empty": True}))

    assert result.success
    rows = target_stats(target_url, *day_bounds(date(2024, 1, 5)))
    assert len(rows) == 144 * 2  # every window of both variables, count 0 and nothing else
    assert {row[3:] for row in rows} == {(None, None, None, None, 0, 0)}


def test_only_transient_errors_reach_the_retry_policy() -> None:
    with pytest.raises(ApiUnavailableError), terminal_errors_fail_once():
        raise ApiUnavailableError("down")
    with pytest.raises(dg.Failure) as failure, terminal_errors_fail_once():
        raise DatabaseError("refused", hint="check the URL")
    assert failure.value.allow_retries is False
    assert failure.value.description == "refused (check the URL)"


def all_check_specs() -> list[dg.AssetCheckSpec]:
    from wind_pipeline.defs import checks

    return checks.RAW_READINGS_CHECKS + checks.TEN_MINUTE_STATS_CHECKS + checks.SIGNAL_DATA_CHECKS
