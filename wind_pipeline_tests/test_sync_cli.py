"""``wind-etl sync`` as a user runs it, against the real API over HTTP and the real target.

Late rows for one turbine of a loaded day, a corrected reading on another day, a deleted one on a
third: exactly those three (day, turbine)s are reloaded, every day then equals the SQL reference,
and a second sync does nothing. Also: a retracted turbine-day, the records ``wind-etl DATE``
writes, and a sync killed mid-way.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta

import psycopg2
import pytest
import sqlalchemy as sa

from wind_pipeline import cli
from wind_pipeline.etl.errors import TerminalError
from wind_pipeline.etl.load import lock_keys
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

DAYS = [DAY + timedelta(days=i) for i in range(4)]
FLEET = ("WTG01", "WTG02", "WTG03")
LATE = (DAYS[1], "WTG02")  # six hours arrive late
UPDATED = (DAYS[2], "WTG01")  # one reading corrected
DELETED = (DAYS[3], "WTG03")  # one reading deleted


def wind_etl(capsys, *args: str, api: str, target: str) -> tuple[int, list[str]]:
    """``wind-etl`` through its real entry point (``main``), its stdout lines."""
    capsys.readouterr()
    code = cli.main([*args, "--api-url", api, "--database-url", target])
    return code, capsys.readouterr().out.splitlines()


def source_sql(url: str, statement: str, params: dict | None = None) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params or {})
    finally:
        engine.dispose()


def records(target: str) -> dict[tuple[date, str], tuple]:
    engine = sa.create_engine(target)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT day, turbine, source_version, readings, loaded_at, run_id "
                    "FROM loaded_day ORDER BY day, turbine"
                )
            ).all()
    finally:
        engine.dispose()
    return {(r.day, r.turbine): tuple(r)[2:] for r in found}


def source_versions(api: str) -> dict[tuple[date, str], tuple[str, int]]:
    from wind_pipeline.etl.client import ConnectorClient

    with ConnectorClient(api, retries=0) as client:
        return {(r.day, r.turbine): (r.version, r.readings) for r in client.days(DAYS[0], DAYS[-1])}


def assert_equals_reference(source: str, target: str, first: date = DAYS[0], days: int = 4):
    start, end = day_bounds(first, days)
    assert_stats_equal(target_stats(target, start, end), reference_stats(source, start, end))


@pytest.fixture
def loaded(seed_source, serve_api, source_url, target_url, capsys):
    """Four days of three turbines loaded by ``wind-etl DATE --end`` with WTG02's 06:00-12:00 of
    the second day held back in a side table (what its controller buffered)."""
    seed_source(days=4, turbines=3)
    source_sql(
        source_url,
        "CREATE TABLE held_back AS SELECT * FROM data WHERE turbine_id = 'WTG02' "
        "AND timestamp >= :a AND timestamp < :b; "
        "DELETE FROM data d USING held_back h "
        "WHERE d.turbine_id = h.turbine_id AND d.timestamp = h.timestamp",
        {"a": f"{DAYS[1]} 06:00+00", "b": f"{DAYS[1]} 12:00+00"},
    )
    api = serve_api()
    code, lines = wind_etl(capsys, DAYS[0].isoformat(), "--end", DAYS[-1].isoformat(),
                           api=api, target=target_url)  # fmt: skip
    assert code == 0 and len(lines) == 5
    return api


def change_the_source(source_url: str) -> None:
    """The three changes: late rows arrive, a reading is corrected, another is deleted."""
    source_sql(source_url, "INSERT INTO data SELECT * FROM held_back")
    source_sql(
        source_url,
        "UPDATE data SET wind_speed = 23.5, power = 2999 WHERE turbine_id = :t AND timestamp = :at",
        {"t": UPDATED[1], "at": f"{UPDATED[0]} 10:00+00"},
    )
    source_sql(
        source_url,
        "DELETE FROM data WHERE turbine_id = :t AND timestamp = :at",
        {"t": DELETED[1], "at": f"{DELETED[0]} 13:37+00"},
    )


def test_wind_etl_date_records_each_turbine_day_with_the_versions_of_days(
    loaded, target_url, source_url
):
    held = records(target_url)
    assert sorted(held) == [(day, t) for day in DAYS for t in FLEET]
    source = source_versions(loaded)
    assert {key: (version, readings) for key, (version, readings, *_) in held.items()} == source
    assert source[LATE][1] == 1440 - 360
    assert all(run_id is None for *_, run_id in held.values())


def test_sync_reloads_exactly_the_three_changed_turbine_days(
    loaded, source_url, target_url, capsys
):
    before = records(target_url)
    versions = source_versions(loaded)
    change_the_source(source_url)
    after_change = source_versions(loaded)
    window = [DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]

    code, lines = wind_etl(capsys, "sync", *window, "--dry-run", api=loaded, target=target_url)
    assert code == 0 and len(lines) == 3 and all("dry run" in line for line in lines)
    assert records(target_url) == before

    code, lines = wind_etl(capsys, "sync", *window, api=loaded, target=target_url)
    assert code == 0
    changed = {LATE, UPDATED, DELETED}
    expected = [
        f"{day.isoformat()}: {turbine} changed {versions[(day, turbine)][0]} → "
        f"{after_change[(day, turbine)][0]}"
        for day, turbine in sorted(changed)
    ]
    assert [line.split(": reloaded")[0] for line in lines[:3]] == expected
    assert lines[3].startswith("synced 3 turbine-days over 3 days in ")
    after = records(target_url)
    moved = {key for key in after if after[key][2] != before[key][2]}  # loaded_at
    assert moved == changed
    for key in changed:
        assert after[key][:2] == after_change[key]
    assert after[LATE][1] == 1440 and after[DELETED][1] == 1439
    assert_equals_reference(source_url, target_url)

    code, lines = wind_etl(capsys, "sync", *window, api=loaded, target=target_url)
    assert code == 0 and len(lines) == 1 and lines[0].startswith("nothing to sync: ")
    assert records(target_url) == after


def test_a_retracted_turbine_day_is_loaded_empty_and_recorded_with_zero_readings(
    loaded, source_url, target_url, capsys
):
    source_sql(
        source_url,
        "DELETE FROM data WHERE turbine_id = 'WTG03' AND timestamp >= :a AND timestamp < :b",
        {"a": f"{DAYS[0]} 00:00+00", "b": f"{DAYS[1]} 00:00+00"},
    )
    code, lines = wind_etl(capsys, "sync", DAYS[0].isoformat(), api=loaded, target=target_url)
    assert code == 0
    assert lines[0].startswith(f"{DAYS[0].isoformat()}: WTG03 retracted: reloaded")
    version, readings, *_ = records(target_url)[(DAYS[0], "WTG03")]
    assert (version, readings) == (None, 0)
    start, end = day_bounds(DAYS[0])
    rows = [r for r in target_stats(target_url, start, end) if r[0] == "WTG03"]
    assert rows and all(r[7] == 0 and r[3] is None for r in rows)  # count 0, no mean
    assert_equals_reference(source_url, target_url)
    code, lines = wind_etl(capsys, "sync", DAYS[0].isoformat(), api=loaded, target=target_url)
    assert lines == [lines[0]] and lines[0].startswith("nothing to sync")


def test_bad_windows_are_refused_with_exit_2(capsys):
    today = date.today()
    for args in (
        ["--since", "0"],
        ["--since", "3", "2024-01-01"],
        ["--end", "2024-01-01"],
        ["2024-01-02", "--end", "2024-01-01"],
        [today.isoformat()],
    ):
        assert cli.main(["sync", *args, "--database-url", "postgresql://x@127.0.0.1:9/t"]) == 2
    assert "not over yet" in capsys.readouterr().err


def test_a_sync_killed_mid_way_leaves_each_day_old_or_new_and_the_next_finishes(
    loaded, source_url, target_url, capsys
):
    """Every day changes; the third day's load waits on a lock held here, and the sync is
    SIGKILLed there: days 1-2 are new, days 3-4 exactly as before, and the next sync finishes."""
    before_rows = {day: target_stats(target_url, *day_bounds(day)) for day in DAYS}
    before = records(target_url)
    for day in DAYS:  # one correction per day, turbine WTG01
        source_sql(
            source_url,
            "UPDATE data SET power = 1234.5 WHERE turbine_id = 'WTG01' AND timestamp = :at",
            {"at": f"{day} 09:00+00"},
        )
    blocker = psycopg2.connect(target_url.replace("postgresql+psycopg2", "postgresql"))
    blocker.autocommit = False
    with blocker.cursor() as cur:
        for key in lock_keys(DAYS[2], ["WTG01"]):
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
    env = {**os.environ, "CONNECTOR_API_URL": loaded, "TARGET_DATABASE_URL": target_url}
    env.pop("WIND_PIPELINE_ALERT_WEBHOOK", None)
    window = [DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]
    process = subprocess.Popen(
        [sys.executable, "-m", "wind_pipeline.cli", "sync", *window],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        assert all(": reloaded" in line for line in lines), lines
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not waiting_on_lock(target_url):
            time.sleep(0.05)
        assert waiting_on_lock(target_url)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        blocker.rollback()
        blocker.close()
    time.sleep(0.5)  # the server notices the dead client and rolls its transaction back
    after = records(target_url)
    for day in DAYS[:2]:
        assert after[(day, "WTG01")][2] != before[(day, "WTG01")][2]
        assert_equals_reference(source_url, target_url, day, 1)
    for day in DAYS[2:]:
        assert {k: v for k, v in after.items() if k[0] == day} == {
            k: v for k, v in before.items() if k[0] == day
        }
        assert target_stats(target_url, *day_bounds(day)) == before_rows[day]

    code, lines = wind_etl(capsys, "sync", *window, api=loaded, target=target_url)
    assert code == 0 and [line[:10] for line in lines[:2]] == [d.isoformat() for d in DAYS[2:]]
    assert_equals_reference(source_url, target_url)
    code, lines = wind_etl(capsys, "sync", *window, api=loaded, target=target_url)
    assert lines[0].startswith("nothing to sync")


def waiting_on_lock(target_url: str) -> bool:
    engine = sa.create_engine(target_url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_reading_landing_between_days_and_the_extract_causes_one_extra_reload(
    seed_source, serve_api, source_url, target_url
):
    """The record keeps the version ``GET /days`` gave before the extract: a row inserted right
    after that read is in the loaded rows but not in the recorded version, so the next sync
    reloads the turbine-day once (never misses it) and the one after does nothing."""
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import DirectDatabase
    from wind_pipeline.etl.reload import run_recorded, sync
    from wind_pipeline.etl.schema import upgrade_schema

    seed_source(days=1, turbines=2)
    source_sql(source_url, "DELETE FROM data WHERE turbine_id = 'WTG01' AND timestamp = :at",
               {"at": f"{DAY} 05:00+00"})  # fmt: skip
    engine = sa.create_engine(target_url)
    upgrade_schema(engine)
    engine.dispose()

    class LateAfterDays(ConnectorClient):
        """The real client; the source gets WTG01's 05:00 right after ``/days`` answered."""

        def days(self, first, last, turbines=None):
            answer = super().days(first, last, turbines)
            source_sql(
                source_url,
                "INSERT INTO data (turbine_id, timestamp, wind_speed, power) "
                "VALUES ('WTG01', :at, 7.5, 900)",
                {"at": f"{DAY} 05:00+00"},
            )
            return answer

    database = DirectDatabase(target_url)
    try:
        with LateAfterDays(serve_api(), retries=0) as late:
            run_recorded(late, database, DAY, DAY)
        assert records(target_url)[(DAY, "WTG01")][1] == 1439  # the readings /days gave
        assert_equals_reference(source_url, target_url, DAY, 1)  # the late row is in the rows
        with ConnectorClient(late.base_url, retries=0) as client:
            once = sync(client, database, DAY, DAY)
            assert [(c.turbine, c.reason) for c in once.changes] == [("WTG01", "changed")]
            assert records(target_url)[(DAY, "WTG01")][1] == 1440
            assert sync(client, database, DAY, DAY).changes == []
    finally:
        database.dispose()


HEAVY = ("numpy", "pyarrow", "pandas", "sqlalchemy", "alembic", "dagster")


def test_a_sync_with_nothing_changed_imports_none_of_the_loads_modules(loaded, target_url):
    """With nothing to reload, ``wind-etl sync`` is the compare alone: its process skips numpy,
    pyarrow, pandas, SQLAlchemy, Alembic and Dagster (about half its time, README "Measured
    performance")."""
    code = (
        "import sys; from wind_pipeline.cli import main; exit_code = main(sys.argv[1:]); "
        f"print(exit_code, sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    window = [DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]
    options = ["--api-url", loaded, "--database-url", target_url]
    result = subprocess.run(
        [sys.executable, "-c", code, "sync", *window, *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"nothing to sync: {DAYS[0]}..{DAYS[-1]} equals the source (12 turbine-days with readings)",
        "0 []",
    ]


def test_a_sync_against_a_source_without_turbines_says_so(
    serve_api, source_url, target_url, capsys
):
    """The whole fleet is compared without ``GET /turbines``; an empty ``/days`` still asks it,
    so a source without any turbine is reported as before, not synced as empty."""
    from connector_api.db import libpq_url
    from connector_api.schema import ensure_schema

    with psycopg2.connect(libpq_url(source_url)) as conn, conn.cursor() as cur:
        ensure_schema(cur)  # the source's tables, without a turbine or a reading
    conn.close()
    api = serve_api()
    capsys.readouterr()
    code = cli.main(["sync", DAYS[0].isoformat(), "--api-url", api, "--database-url", target_url])
    printed = capsys.readouterr()
    assert (code, printed.out) == (cli.exit_code(TerminalError("")), "")
    assert "the source has no turbines" in printed.err


def test_a_day_loaded_with_every_variable_keeps_them_through_a_default_sync(
    seed_source, serve_api, source_url, target_url, capsys
):
    """A day loaded with ``--variables all`` is not "rules changed" to a sync of the default
    pair, and when its source changes the reload keeps every variable it held."""
    every = ("wind_speed", "power", "ambient_temperature", "wind_direction", "nacelle_position")
    every += ("yaw_error",)
    seed_source(days=1, turbines=2)
    api, day = serve_api(), DAYS[0].isoformat()
    code, _ = wind_etl(capsys, day, "--variables", "all", api=api, target=target_url)
    assert code == 0

    code, lines = wind_etl(capsys, "sync", day, "--end", day, api=api, target=target_url)
    assert code == 0 and len(lines) == 1 and lines[0].startswith("nothing to sync: ")

    source_sql(
        source_url,
        "UPDATE data SET wind_direction = 123.4 WHERE turbine_id = 'WTG01' AND timestamp = :at",
        {"at": f"{day} 10:00+00"},
    )
    code, lines = wind_etl(capsys, "sync", day, "--end", day, api=api, target=target_url)
    assert code == 0 and lines[0].startswith(f"{day}: WTG01 changed ")
    engine = sa.create_engine(target_url)
    try:
        with engine.connect() as conn:
            held = conn.execute(sa.text("SELECT turbine, variables FROM loaded_day")).all()
    finally:
        engine.dispose()
    assert sorted((t, sorted(v)) for t, v in held) == [(t, sorted(every)) for t in FLEET[:2]]
    start, end = day_bounds(DAYS[0], 1)
    expected = reference_stats(source_url, start, end, variables=every)
    assert_stats_equal(target_stats(target_url, start, end), expected)
