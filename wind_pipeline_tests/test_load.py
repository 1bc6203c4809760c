"""Loading into the real target PostgreSQL: values, idempotency, concurrency, atomicity."""

import threading
import time
from datetime import UTC, date, datetime, timedelta

import psycopg2
import pytest
import sqlalchemy as sa

from wind_pipeline.etl import load as load_module
from wind_pipeline.etl.db import create_engine
from wind_pipeline.etl.errors import DatabaseError, InvalidInputError
from wind_pipeline.etl.load import LOCK_NAMESPACE, load
from wind_pipeline.etl.schema import create_schema
from wind_pipeline.etl.transform import ten_minute_stats
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.etl_checks import (
    assert_matches_reference,
    day_bounds,
    raw_from_source,
    reference,
    target_row_count,
    target_values,
)

VARIABLES = ("wind_speed", "power")


def day_stats(source_url, day=DAY, days=1, variables=VARIABLES):
    start, end = day_bounds(day, days)
    return ten_minute_stats(
        raw_from_source(source_url, day, variables, days), start, end, variables
    )


def test_one_day_matches_postgresql_own_aggregates(seed_source, source_url, target_url, engine):
    seed_source(days=1)
    written = load(engine, day_stats(source_url))
    expected = reference(source_url, DAY, VARIABLES)
    assert written == len(expected) == target_row_count(target_url)
    assert_matches_reference(target_values(target_url), expected)


def test_a_day_with_faults_matches_and_skips_undefined_statistics(
    seed_source, source_url, target_url, engine
):
    seed_source(days=1, faults=True)
    load(engine, day_stats(source_url))
    expected = reference(source_url, DAY, VARIABLES)
    counts = [v for (var, stat, _), v in expected.items() if stat == "count"]
    assert 0.0 in counts  # gaps and NULL runs really empty some windows
    assert len(expected) < 144 * 2 * 5  # so some statistics are not written
    assert_matches_reference(target_values(target_url), expected)


def test_signals_are_named_and_described(seed_source, source_url, engine):
    seed_source(days=1)
    load(engine, day_stats(source_url))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, variable, statistic, unit FROM signal")).all()
    assert len(rows) == 10
    by_name = {r.name: r for r in rows}
    assert by_name["wind_speed_mean"].unit == "m/s"
    assert by_name["power_max"].statistic == "max" and by_name["power_max"].variable == "power"
    assert by_name["power_count"].unit is None


def test_five_runs_leave_one_run_and_a_changed_source_replaces(
    seed_source, source_url, target_url, engine
):
    seed_source(days=2)
    stats = day_stats(source_url, days=2)
    for _ in range(5):
        load(engine, stats)
    expected = reference(source_url, DAY, VARIABLES, days=2)
    assert target_row_count(target_url) == len(expected)

    seed_source(days=2, replace=True, seed=7)
    load(engine, day_stats(source_url, days=2))
    changed = reference(source_url, DAY, VARIABLES, days=2)
    assert changed != expected
    assert_matches_reference(target_values(target_url), changed)


def test_concurrent_loads_of_a_day_queue_on_the_lock(seed_source, source_url, target_url, engine):
    seed_source(days=1)
    stats = day_stats(source_url)
    holder = psycopg2.connect(target_url.replace("+psycopg2", ""))
    with holder.cursor() as cur:  # hold the day's lock so both loads start and must wait
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, DAY.toordinal()))
    results, errors = [], []

    def run():
        try:
            results.append(load(engine, stats))
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while waiting_on_lock(engine) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waiting_on_lock(engine) == 2
    holder.rollback()  # releases the lock: the loads now run one after the other
    for thread in threads:
        thread.join(timeout=30)
    holder.close()
    assert not errors and results == [results[0]] * 2
    expected = reference(source_url, DAY, VARIABLES)
    assert target_row_count(target_url) == len(expected)
    assert_matches_reference(target_values(target_url), expected)


def waiting_on_lock(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar()


def test_a_failure_after_the_delete_keeps_the_previous_rows(
    seed_source, source_url, target_url, engine, monkeypatch
):
    seed_source(days=1)
    load(engine, day_stats(source_url))
    before = target_values(target_url)

    # A payload PostgreSQL rejects halfway: the day's DELETE has run when COPY fails.
    monkeypatch.setattr(
        load_module, "_copy_payload", lambda stats, ids: (b"PGCOPY\n\xff\r\nbad", 5)
    )
    seed_source(days=1, replace=True, seed=7)
    with pytest.raises(DatabaseError, match="loading 2024-01-01"):
        load(engine, day_stats(source_url))
    assert target_values(target_url) == before

    def fail(cur, payload):
        raise RuntimeError("killed between delete and COPY")

    monkeypatch.undo()
    monkeypatch.setattr(load_module, "_copy", fail)
    with pytest.raises(RuntimeError):
        load(engine, day_stats(source_url))
    assert target_values(target_url) == before


def test_an_unreachable_database_is_a_clear_error(seed_source, source_url):
    seed_source(days=1)
    engine = create_engine("postgresql://nobody@127.0.0.1:9/target")  # bare scheme accepted
    with pytest.raises(DatabaseError, match="while connecting") as caught:
        load(engine, day_stats(source_url))
    assert "TARGET_DATABASE_URL" in str(caught.value)


def test_a_missing_schema_says_to_run_init_db(seed_source, source_url, target_url):
    seed_source(days=1)
    with pytest.raises(DatabaseError, match="init-db"):
        load(create_engine(target_url), day_stats(source_url))


def test_create_schema_is_idempotent_and_keeps_data(seed_source, source_url, target_url, engine):
    seed_source(days=1)
    written = load(engine, day_stats(source_url))
    create_schema(engine)
    create_schema(create_engine(target_url.replace("postgresql+psycopg2", "postgresql")))
    assert target_row_count(target_url) == written


def test_a_foreign_database_url_is_refused():
    with pytest.raises(InvalidInputError, match="postgresql"):
        create_engine("mysql://root@127.0.0.1/target")


def test_loading_several_days_writes_each_day(seed_source, source_url, target_url, engine):
    seed_source(days=3, start=date(2024, 2, 28))  # across a leap day
    stats = day_stats(source_url, day=date(2024, 2, 28), days=3)
    assert load(engine, stats) == target_row_count(target_url)
    assert_matches_reference(
        target_values(target_url), reference(source_url, date(2024, 2, 28), VARIABLES, days=3)
    )


def test_a_failing_day_in_a_range_keeps_its_rows_and_stops_the_load(
    seed_source, source_url, target_url, engine, monkeypatch
):
    first = date(2024, 1, 1)
    seed_source(days=4)
    load(engine, day_stats(source_url, days=4))
    before = target_values(target_url)
    real_copy = load_module._copy
    second_day = datetime(2024, 1, 2, tzinfo=UTC)

    def copy_failing_on_the_second_day(cur, payload):
        cur.execute(
            "SELECT count(*) FROM data WHERE timestamp >= %s AND timestamp < %s",
            (second_day, second_day + timedelta(days=1)),
        )
        if cur.fetchone()[0] == 0:  # this transaction has just deleted the second day
            raise RuntimeError("injected failure on 2024-01-02")
        real_copy(cur, payload)

    monkeypatch.setattr(load_module, "_copy", copy_failing_on_the_second_day)
    seed_source(days=4, replace=True, seed=7)
    with pytest.raises(RuntimeError, match="injected"):
        load(engine, day_stats(source_url, days=4))
    after = target_values(target_url)
    second = {k: v for k, v in after.items() if k[2].date() == second_day.date()}
    assert second == {k: v for k, v in before.items() if k[2].date() == second_day.date()}
    assert any(after[k] != before[k] for k in after if k[2].date() == first)  # day 1 replaced


def test_first_loads_of_two_days_at_once_create_each_signal_once(
    seed_source, source_url, target_url, engine
):
    seed_source(days=2)
    stats = [day_stats(source_url, day=date(2024, 1, i)) for i in (1, 2)]
    holder = psycopg2.connect(target_url.replace("+psycopg2", ""))
    with holder.cursor() as cur:  # both loads reach their signal insert, then wait here
        cur.execute("LOCK TABLE signal IN SHARE MODE")
    errors = []

    def run(frame):
        try:
            load(engine, frame)
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(frame,)) for frame in stats]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while waiting_on_table_lock(engine) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waiting_on_table_lock(engine) == 2
    holder.rollback()
    for thread in threads:
        thread.join(timeout=30)
    holder.close()
    assert not errors
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM signal")).scalar() == 10
    expected = reference(source_url, DAY, VARIABLES, days=2)
    assert_matches_reference(target_values(target_url), expected)


def waiting_on_table_lock(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND NOT granted")
        ).scalar()
