"""The month-partitioned ``data``: made ahead by init, by the load, safely under races."""

import threading
from datetime import UTC, date, datetime

import psycopg2
import pytest
import sqlalchemy as sa

from wind_pipeline.etl import months
from wind_pipeline.etl.errors import DatabaseError
from wind_pipeline.etl.transform import transform
from wind_pipeline_tests.conftest import DAY
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
JOIN_TIMEOUT_S = 60


def dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def partitions(engine) -> dict[str, str]:
    """Partition name → its bounds, as PostgreSQL prints them."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'data'::regclass"
            )
        )
        return dict(rows.all())


def rows_in(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()


def stats_of(source_url, turbines):
    start, end = day_bounds(DAY)
    raw = raw_from_source(source_url, start, end, VARIABLES, turbines)
    return transform(raw, start, end, turbines=turbines, variables=LIMITS, qc=True).stats


def test_init_makes_this_month_the_next_and_a_default(engine):
    this_month = months.month_of(datetime.now(UTC).date())
    following = months.next_month(this_month)
    found = partitions(engine)
    assert set(found) == {
        months.partition_name(this_month),
        months.partition_name(following),
        months.DEFAULT_PARTITION,
    }
    assert found[months.DEFAULT_PARTITION] == "DEFAULT"
    start, end = months.month_start(this_month), months.month_start(following)
    assert found[months.partition_name(this_month)] == (
        f"FOR VALUES FROM ('{start:%Y-%m-%d %H:%M:%S}+00') TO ('{end:%Y-%m-%d %H:%M:%S}+00')"
    )


def test_a_load_into_a_month_without_its_partition_makes_it(
    seed_source, source_url, target_url, engine
):
    seed_source(days=1, turbines=2, faults=True)
    assert "data_2024_01" not in partitions(engine)
    written = load(engine, stats_of(source_url, ("WTG01", "WTG02")), LIMITS)
    assert "data_2024_01" in partitions(engine)
    assert rows_in(engine, "data_2024_01") == written[DAY] > 0
    conn = psycopg2.connect(dsn(target_url))
    try:
        assert months.default_partition_rows(conn) == 0
    finally:
        conn.close()
    start, end = day_bounds(DAY)
    expected = reference_stats(source_url, start, end, variables=VARIABLES)
    assert_stats_equal(target_stats(target_url, start, end), expected)


def test_two_loads_racing_into_a_new_month_both_land(seed_source, source_url, target_url, engine):
    seed_source(days=1, turbines=2, faults=False)
    parts = {t: stats_of(source_url, (t,)) for t in ("WTG01", "WTG02")}
    barrier = threading.Barrier(2, timeout=JOIN_TIMEOUT_S)
    written, failures = {}, []

    def run(turbine):
        try:
            barrier.wait()  # both reach the missing month at once
            written[turbine] = load(engine, parts[turbine], LIMITS)[DAY]
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not failures
    assert rows_in(engine, "data_2024_01") == sum(written.values()) > 0
    assert rows_in(engine, months.DEFAULT_PARTITION) == 0


def test_racing_creations_of_the_same_month_make_it_once(target_url, engine):
    barrier = threading.Barrier(4, timeout=JOIN_TIMEOUT_S)
    created, failures = [], []

    def run():
        conn = psycopg2.connect(dsn(target_url))
        try:
            barrier.wait()
            created.append(months.ensure_months(conn, date(2030, 1, 31), date(2030, 3, 1)))
        except Exception as exc:
            failures.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not failures and len(created) == 4
    made = sorted(name for names in created for name in names)
    assert made == ["data_2030_01", "data_2030_02", "data_2030_03"]  # each once, by someone
    assert {"data_2030_01", "data_2030_02", "data_2030_03"} <= set(partitions(engine))


def test_attaching_a_month_waits_neither_for_loads_nor_for_readers_of_a_month(target_url, engine):
    """ATTACH takes SHARE UPDATE EXCLUSIVE on ``data``: an open day's transaction (ROW
    EXCLUSIVE) and a month's reader (ACCESS SHARE) do not hold it up."""
    ensure = psycopg2.connect(dsn(target_url))
    busy = psycopg2.connect(dsn(target_url))
    try:
        months.ensure_months(ensure, DAY, DAY)
        with busy.cursor() as cur:
            cur.execute(
                "DELETE FROM data WHERE timestamp >= %s AND timestamp < %s", day_bounds(DAY)
            )
            cur.execute(
                "SELECT count(*) FROM data WHERE timestamp >= %s AND timestamp < %s",
                (months.month_start((2024, 1)), months.month_start((2024, 2))),
            )
        with ensure.cursor() as cur:
            cur.execute("SET lock_timeout = '5s'")  # fails the test rather than hanging it
        ensure.commit()
        assert months.ensure_months(ensure, date(2031, 5, 1), date(2031, 5, 1)) == ["data_2031_05"]
        with ensure.cursor() as cur:  # the lock ATTACH takes on the parent, seen while it holds it
            months.create_months(cur, [(2031, 6)])
            cur.execute(
                "SELECT mode FROM pg_locks WHERE relation = 'data'::regclass AND pid = "
                "pg_backend_pid() AND mode <> 'AccessShareLock'"
            )
            assert [mode for (mode,) in cur.fetchall()] == ["ShareUpdateExclusiveLock"]
        ensure.rollback()
    finally:
        busy.close()
        ensure.close()


def test_a_row_in_default_is_counted_and_blocks_its_month(target_url, engine):
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO data VALUES (1, '2020-05-02 00:10+00', 1.5)"))
    conn = psycopg2.connect(dsn(target_url))
    try:
        assert months.default_partition_rows(conn) == 1
        with pytest.raises(DatabaseError, match="default partition"):
            months.ensure_months(conn, date(2020, 5, 1), date(2020, 5, 1))
        assert months.default_partition_rows(conn) == 1  # nothing half made
    finally:
        conn.close()
    assert "data_2020_05" not in partitions(engine)
