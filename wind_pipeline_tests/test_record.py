"""``loaded_day`` written in the caller's transaction and read back, and the compare against it."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from wind_pipeline.etl.record import DayRecord, read_records, write_records
from wind_pipeline.etl.sync import changes
from wind_pipeline.etl.versions import SourceDay

DAY = date(2026, 11, 30)


def in_transaction(engine, work, *, commit=True):
    """Run ``work(cursor)`` in one DBAPI transaction, as the load's ``within`` hook is run."""
    conn = engine.raw_connection()
    try:
        with conn.cursor() as cur:
            work(cur)
        conn.commit() if commit else conn.rollback()
    finally:
        conn.close()


def rows(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM loaded_day ORDER BY day, turbine")).all()


def test_write_records_upserts_one_row_per_turbine_with_the_transactions_time(engine):
    def first(cur):
        write_records(
            cur,
            DAY,
            ["WTG01", "WTG02"],
            {"WTG01": "v1"},
            {"WTG01": 1440, "WTG02": 0},
            ["wind_speed", "power"],
            True,
            "r1-aaaa",
            "run-1",
        )
        cur.execute("SELECT now()")
        first.at = cur.fetchone()[0]

    in_transaction(engine, first)
    stored = rows(engine)
    assert [tuple(row) for row in stored] == [
        (DAY, "WTG01", "v1", 1440, ["wind_speed", "power"], True, "r1-aaaa", first.at, "run-1"),
        (DAY, "WTG02", None, 0, ["wind_speed", "power"], True, "r1-aaaa", first.at, "run-1"),
    ]

    record = DayRecord(DAY, ("WTG02",), {"WTG02": "v7"}, {"WTG02": 60}, ("power",), False, "r1-b")
    in_transaction(engine, record.write)
    after = {row.turbine: row for row in rows(engine)}
    assert tuple(after["WTG01"]) == tuple(stored[0])  # the other turbine's record untouched
    assert tuple(after["WTG02"])[:7] == (DAY, "WTG02", "v7", 60, ["power"], False, "r1-b")
    assert after["WTG02"].run_id is None and after["WTG02"].loaded_at > first.at


def test_a_rolled_back_load_leaves_the_previous_record(engine):
    in_transaction(
        engine, DayRecord(DAY, ("WTG01",), {"WTG01": "v1"}, {}, ("power",), True, "r").write
    )
    before = rows(engine)
    new = DayRecord(DAY, ("WTG01",), {"WTG01": "v2"}, {}, ("power",), True, "r")
    in_transaction(engine, new.write, commit=False)
    assert rows(engine) == before


def test_read_records_is_the_window_and_the_turbines_asked(engine):
    for offset in range(5):
        day = DAY - timedelta(days=offset)
        versions = {"WTG01": f"a{offset}", "WTG02": f"b{offset}"}
        record = DayRecord(
            day, ("WTG01", "WTG02"), versions, {"WTG01": 1, "WTG02": 2}, ("power",), True, "r"
        )
        in_transaction(engine, record.write)
    got = read_records(engine, DAY - timedelta(days=3), DAY - timedelta(days=1), ["WTG02"])
    assert sorted(got) == [(DAY - timedelta(days=d), "WTG02") for d in (3, 2, 1)]
    one = got[(DAY - timedelta(days=2), "WTG02")]
    assert (one.source_version, one.readings, one.variables, one.rules) == (
        "b2",
        2,
        ("power",),
        "r",
    )
    assert len(read_records(engine, DAY - timedelta(days=4), DAY)) == 10


def source(day, turbine, version, readings=1440):
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return SourceDay(
        day, turbine, readings, start, start + timedelta(hours=23, minutes=59), version
    )


def test_the_compare_against_a_real_loaded_day_table(engine):
    """Records written as a load writes them, read back, compared with /days-shaped rows."""
    yesterday = DAY - timedelta(days=1)
    for day in (yesterday, DAY):
        record = DayRecord(
            day,
            ("WTG01", "WTG02"),
            {"WTG01": "v1", "WTG02": "v1"},
            {"WTG01": 1440, "WTG02": 1440},
            ("power",),
            True,
            "r1",
        )
        in_transaction(engine, record.write)
    now = [
        source(yesterday, "WTG01", "v1"),
        source(yesterday, "WTG02", "v2"),  # corrected
        source(DAY, "WTG01", "v1"),  # DAY's WTG02 retracted
        source(DAY, "WTG03", "v1"),  # a turbine never loaded
    ]
    records = read_records(engine, yesterday, DAY)
    found = changes(now, records, first=yesterday, last=DAY, rules="r1")
    assert [(c.day, c.turbine, c.reason, c.old_version, c.new_version) for c in found] == [
        (yesterday, "WTG02", "changed", "v1", "v2"),
        (DAY, "WTG02", "retracted", "v1", None),
        (DAY, "WTG03", "new", None, "v1"),
    ]
    assert changes(now, records, first=yesterday, last=DAY, rules="r2")[0].reason == "rules changed"


@pytest.mark.parametrize("turbines", [None, ["WTG01"]])
def test_read_records_of_an_empty_table_is_empty(engine, turbines):
    assert read_records(engine, DAY, DAY, turbines) == {}


def test_compare_reads_get_days_and_the_records_of_the_window(engine):
    """``compare`` end to end: /days over HTTP (the route's JSON contract), the real table."""
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.sync import compare
    from wind_pipeline_tests.http_receiver import receiver

    record = DayRecord(
        DAY,
        ("WTG01", "WTG02"),
        {"WTG01": "v1", "WTG02": "v1"},
        {"WTG01": 9, "WTG02": 9},
        ("power",),
        True,
        "r1",
    )
    in_transaction(engine, record.write)
    body = [
        {
            "day": DAY.isoformat(),
            "turbine_id": "WTG01",
            "readings": 10,
            "first_timestamp": "2026-11-30T00:00:00Z",
            "last_timestamp": "2026-11-30T00:09:00Z",
            "version": "v2",
        }
    ]
    with receiver(routes={"/days": body}) as api, ConnectorClient(api.url, retries=0) as client:
        source, found = compare(client, engine, DAY, DAY, turbines=["WTG02", "WTG01"], rules="r1")
    assert [row.version for row in source] == ["v2"]
    assert [(c.turbine, c.reason) for c in found] == [("WTG01", "changed"), ("WTG02", "retracted")]
    assert api.requests[0].path == "/days?start=2026-11-30&end=2026-12-01&turbines=WTG01%2CWTG02"
