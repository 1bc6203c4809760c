"""Loading into the real target PostgreSQL: values, per-turbine replace, locks, atomicity."""

import threading
import time
from datetime import date, timedelta

import psycopg2
import pytest
import sqlalchemy as sa

from wind_pipeline.etl import load as load_module
from wind_pipeline.etl.db import create_engine
from wind_pipeline.etl.errors import DatabaseError, InvalidInputError, TargetUnavailableError
from wind_pipeline.etl.load import load_day, lock_keys
from wind_pipeline.etl.transform import transform
from wind_pipeline_tests.conftest import DAY, target_row_count
from wind_pipeline_tests.loads import load
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    pipeline_limits,
    raw_from_source,
    reference_stats,
    target_stats,
)

VARIABLES = ("wind_speed", "power")
LIMITS = pipeline_limits(VARIABLES)
FLEET = ("WTG01", "WTG02", "WTG03")


def stats_of(source_url, turbines=FLEET, day=DAY, days=1, qc=True):
    start, end = day_bounds(day, days)
    raw = raw_from_source(source_url, start, end, VARIABLES, turbines)
    return transform(raw, start, end, turbines=turbines, variables=LIMITS, qc=qc).stats


def rows_of(target_url, turbine):
    with sa.create_engine(target_url, poolclass=sa.pool.NullPool).connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT d.* FROM data d JOIN signal s ON s.id = d.signal_id "
                "WHERE s.turbine = :t ORDER BY 1, 2"
            ),
            {"t": turbine},
        ).all()


@pytest.fixture
def fleet(seed_source):
    seed_source(days=2, turbines=3, faults=True)


def test_a_faulty_fleet_lands_equal_to_the_sql_reference(fleet, source_url, target_url, engine):
    start, end = day_bounds(DAY, 2)
    written = load(engine, stats_of(source_url, days=2), LIMITS)
    assert list(written) == [DAY, DAY + timedelta(days=1)]
    assert sum(written.values()) == target_row_count(target_url)
    expected = reference_stats(source_url, start, end, variables=VARIABLES)
    assert_stats_equal(target_stats(target_url, start, end), expected)


def test_loading_one_turbine_leaves_the_others_untouched(fleet, source_url, target_url, engine):
    load(engine, stats_of(source_url), LIMITS)
    others = {t: rows_of(target_url, t) for t in ("WTG01", "WTG03")}
    before = rows_of(target_url, "WTG02")

    load(engine, stats_of(source_url, turbines=("WTG02",), qc=False), LIMITS)
    assert {t: rows_of(target_url, t) for t in ("WTG01", "WTG03")} == others
    after = rows_of(target_url, "WTG02")
    assert after != before and len({row[:2] for row in after}) == len(after)
    start, end = day_bounds(DAY)
    plain = reference_stats(source_url, start, end, turbines=["WTG02"], qc=False)
    mine = [row for row in target_stats(target_url, start, end) if row[0] == "WTG02"]
    assert_stats_equal(mine, plain)


def test_re_running_a_fleet_day_leaves_one_copy(fleet, source_url, target_url, engine):
    stats = stats_of(source_url)
    first = load(engine, stats, LIMITS)
    for _ in range(3):
        assert load(engine, stats, LIMITS) == first
    assert target_row_count(target_url) == first[DAY]
    start, end = day_bounds(DAY)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )


def test_switching_qc_replaces_every_row(fleet, source_url, target_url, engine):
    start, end = day_bounds(DAY)
    for qc in (True, False, True, False):
        load(engine, stats_of(source_url, qc=qc), LIMITS)
        expected = reference_stats(source_url, start, end, qc=qc)
        assert_stats_equal(target_stats(target_url, start, end), expected)
    with engine.connect() as conn:  # no stale rejected rows from the QC run: all zero now
        stale = conn.execute(
            sa.text(
                "SELECT count(*) FROM data d JOIN signal s ON s.id = d.signal_id "
                "WHERE s.statistic = 'rejected' AND d.value <> 0"
            )
        ).scalar()
    assert stale == 0


def test_signals_are_named_per_turbine_with_the_catalogues_units(fleet, source_url, engine):
    load(engine, stats_of(source_url), LIMITS)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT name, turbine, variable, statistic, unit, description FROM signal")
        ).all()
    assert len(rows) == 3 * 2 * 6
    by_name = {r.name: r for r in rows}
    assert by_name["WTG01.wind_speed_mean"].unit == "m/s"
    assert by_name["WTG03.power_max"][1:4] == ("WTG03", "power", "max")
    assert (
        by_name["WTG02.power_count"].unit is None and by_name["WTG02.power_rejected"].unit is None
    )
    assert "WTG02" in by_name["WTG02.wind_speed_std"].description


def test_the_locks_are_exactly_the_days_turbines(fleet, source_url, target_url, engine):
    """A load of WTG02 waits only for a holder of (day, WTG02); WTG01's load never waits."""
    holder = psycopg2.connect(target_url.replace("+psycopg2", ""))
    [(day_key, turbine_key)] = lock_keys(DAY, ["WTG02"])
    with holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (day_key, turbine_key))
    load(engine, stats_of(source_url, turbines=("WTG01",)), LIMITS)  # not blocked
    done = []
    thread = threading.Thread(
        target=lambda: done.append(load(engine, stats_of(source_url, turbines=("WTG02",)), LIMITS))
    )
    thread.start()
    deadline = time.monotonic() + 10
    while waiting(engine) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waiting(engine) == 1 and not done
    holder.rollback()
    thread.join(timeout=30)
    holder.close()
    assert done and rows_of(target_url, "WTG02")


def waiting(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar()


def test_lock_keys_are_sorted_and_fit_int4():
    keys = lock_keys(date(2024, 1, 1), [f"WTG{i:02d}" for i in range(50, 0, -1)])
    assert keys == sorted(keys) and len(keys) == 50
    assert all(-(2**31) <= k < 2**31 for pair in keys for k in pair)


def test_first_loads_of_two_turbines_at_once_create_each_signal_once(
    fleet, source_url, target_url, engine
):
    stats = [stats_of(source_url, turbines=(t,)) for t in ("WTG01", "WTG02")]
    holder = psycopg2.connect(target_url.replace("+psycopg2", ""))
    with holder.cursor() as cur:  # both loads reach their signal insert, then wait here
        cur.execute("LOCK TABLE signal IN SHARE MODE")
    failures = []

    def run(table):
        try:
            load(engine, table, LIMITS)
        except Exception as exc:  # surfaced by the assert below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(table,)) for table in stats]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    holder.rollback()
    for thread in threads:
        thread.join(timeout=30)
    holder.close()
    assert not failures
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM signal")).scalar() == 2 * 2 * 6


def test_a_failing_day_keeps_its_rows_and_the_days_before_stay(
    fleet, source_url, target_url, engine, monkeypatch
):
    load(engine, stats_of(source_url, days=2), LIMITS)
    second = rows_of(target_url, "WTG01")
    real_copy = load_module._copy
    calls = []

    def copy_failing_on_the_second_day(cur, stats, signals):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("injected failure after the delete")
        return real_copy(cur, stats, signals)

    monkeypatch.setattr(load_module, "_copy", copy_failing_on_the_second_day)
    with pytest.raises(RuntimeError, match="injected"):
        load(engine, stats_of(source_url, days=2, qc=False), LIMITS)
    after = rows_of(target_url, "WTG01")
    day_two = [r for r in after if r.timestamp.date() == DAY + timedelta(days=1)]
    assert day_two == [r for r in second if r.timestamp.date() == DAY + timedelta(days=1)]
    assert after != second  # the first day was replaced (qc off), the second kept


def test_a_new_signal_rolled_back_is_not_remembered(
    fleet, source_url, target_url, engine, monkeypatch
):
    """The first day inserts the signals and fails: the second load must insert them again."""
    real_copy = load_module._copy

    def fail_once(cur, stats, signals):
        monkeypatch.setattr(load_module, "_copy", real_copy)
        raise RuntimeError("injected")

    monkeypatch.setattr(load_module, "_copy", fail_once)
    with pytest.raises(RuntimeError):
        load(engine, stats_of(source_url), LIMITS)
    assert load(engine, stats_of(source_url), LIMITS)[DAY] == target_row_count(target_url) > 0


def test_a_dropped_connection_is_transient(fleet, source_url, target_url, engine):
    holder = psycopg2.connect(target_url.replace("+psycopg2", ""))
    [(day_key, turbine_key)] = lock_keys(DAY, ["WTG01"])
    with holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (day_key, turbine_key))
    failures = []

    def run():
        try:
            load(engine, stats_of(source_url, turbines=("WTG01",)), LIMITS)
        except Exception as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while waiting(engine) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    with holder.cursor() as cur:  # the server drops the waiting load's connection
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND NOT granted"
        )
    thread.join(timeout=30)
    holder.rollback()
    holder.close()
    assert len(failures) == 1 and isinstance(failures[0], TargetUnavailableError), failures
    assert target_row_count(target_url) == 0


def test_an_unreachable_database_is_transient_and_names_the_setting(fleet, source_url):
    engine = create_engine("postgresql://nobody@127.0.0.1:9/target")  # bare scheme accepted
    with pytest.raises(TargetUnavailableError, match="while connecting") as caught:
        load(engine, stats_of(source_url), LIMITS)
    assert "TARGET_DATABASE_URL" in str(caught.value)


def test_a_missing_schema_says_to_run_init_db(fleet, source_url, target_url):
    with pytest.raises(DatabaseError, match="init-db"):
        load(create_engine(target_url), stats_of(source_url), LIMITS)


def test_a_foreign_database_url_is_refused():
    with pytest.raises(InvalidInputError, match="postgresql"):
        create_engine("mysql://root@127.0.0.1/target")


def test_signal_totals_read_back_exactly_the_turbines_asked(fleet, source_url, engine):
    from wind_pipeline.etl.target import signal_totals

    stats = stats_of(source_url)
    load(engine, stats, LIMITS)
    start, end = day_bounds(DAY)
    totals = signal_totals(engine, ["WTG02"], ["power"], start, end)
    assert set(totals) == {
        f"WTG02.power_{s}" for s in ("mean", "min", "max", "std", "count", "rejected")
    }
    counts = [
        c
        for t, v, c in zip(
            stats.column("turbine_id").to_pylist(),
            stats.column("variable").to_pylist(),
            stats.column("count").to_pylist(),
            strict=True,
        )
        if (t, v) == ("WTG02", "power")
    ]
    assert totals["WTG02.power_count"] == (144, float(sum(counts)))


def relation_loops(plan: dict, relation: str) -> list[int]:
    """``Actual Loops`` of every scan of ``relation`` in an EXPLAIN (ANALYZE, FORMAT JSON) plan."""
    here = [plan["Actual Loops"]] if plan.get("Relation Name") == relation else []
    return here + [n for child in plan.get("Plans", []) for n in relation_loops(child, relation)]


def test_a_day_past_the_months_statistics_is_read_back_without_a_scan_per_row(
    fleet, source_url, engine
):
    """Analyzed after the first day, the second lies past the month's histogram (estimated at
    one row): the read-back scans ``signal`` at most once per signal, not once per data row."""
    from wind_pipeline.etl.target import TOTALS_SQL

    second = DAY + timedelta(days=1)
    load(engine, stats_of(source_url), LIMITS)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    load(engine, stats_of(source_url, day=second), LIMITS)
    start, end = day_bounds(second)
    asked = {"turbines": list(FLEET), "variables": list(VARIABLES), "start": start, "end": end}
    signals = len(FLEET) * len(VARIABLES) * 6
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + TOTALS_SQL, asked)
        plan = plan.scalar_one()[0]["Plan"]
        assert len(conn.exec_driver_sql(TOTALS_SQL, asked).all()) == signals
    # The plain join scanned signal 5,099 times here (once per data row of the day).
    assert 0 < max(relation_loops(plan, "signal")) <= signals


def test_stats_read_back_from_parquet_or_pandas_load_the_same(
    fleet, source_url, target_url, engine, tmp_path
):
    """What the IO manager hands over: dictionary strings, nanoseconds after a pandas trip."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stats = stats_of(source_url, turbines=("WTG01",))
    pq.write_table(stats, tmp_path / "day.parquet")
    back = pq.read_table(tmp_path / "day.parquet", read_dictionary=["turbine_id", "variable"])
    nanos = back.set_column(
        1, "timestamp", back.column("timestamp").cast(pa.timestamp("ns", "UTC"))
    )
    assert load(engine, stats, LIMITS) == load(engine, nanos, LIMITS)
    start, end = day_bounds(DAY)
    expected = reference_stats(source_url, start, end, turbines=["WTG01"])
    assert_stats_equal(target_stats(target_url, start, end), expected)


def test_an_empty_day_told_its_turbine_deletes_its_rows_and_only_those(
    fleet, source_url, target_url, engine
):
    load(engine, stats_of(source_url), LIMITS)
    others = {t: rows_of(target_url, t) for t in ("WTG01", "WTG03")}
    assert rows_of(target_url, "WTG02")
    empty = stats_of(source_url).slice(0, 0)

    written = load_day(engine, DAY, empty, turbines=("WTG02",), variables=LIMITS)

    assert written == 0
    assert rows_of(target_url, "WTG02") == []
    assert {t: rows_of(target_url, t) for t in ("WTG01", "WTG03")} == others


def test_hooks_run_in_the_days_transaction(fleet, source_url, target_url, engine):
    """``before_copy`` sees the delete, ``within`` the day's new rows; a failing hook rolls the
    whole day back."""
    seen = []

    def count_rows(cur):
        cur.execute("SELECT count(*) FROM data")
        seen.append(cur.fetchone()[0])

    stats = stats_of(source_url)
    written = load_day(
        engine,
        DAY,
        stats,
        turbines=FLEET,
        variables=LIMITS,
        before_copy=count_rows,
        within=count_rows,
    )
    assert seen == [0, written] and written == target_row_count(target_url)

    def fail(cur):
        raise RuntimeError("injected in the hook")

    before = rows_of(target_url, "WTG01")
    with pytest.raises(RuntimeError, match="injected"):
        load_day(
            engine,
            DAY,
            stats_of(source_url, qc=False),
            turbines=FLEET,
            variables=LIMITS,
            within=fail,
        )
    assert rows_of(target_url, "WTG01") == before
