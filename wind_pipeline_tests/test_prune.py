"""``wind-etl prune --before YYYY-MM`` as a user runs it: exactly the months before go."""

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from wind_pipeline.etl import months

# Rows per month below: 3 signals x every ten minutes of the days given.
FILLED = {"data_2024_01": 31, "data_2024_02": 29, "data_2024_03": 31, "data_2024_04": 2}


def wind_etl(*args: str, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TARGET_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "wind_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def month_rows(engine) -> dict[str, int]:
    """Rows per partition of ``data``, every partition listed (empty ones too)."""
    with engine.connect() as conn:
        names = conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'data'::regclass"
            )
        ).scalars()
        return {
            name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in names
        }


@pytest.fixture
def filled(engine):
    """The target with rows from 2024-01-01 to 2024-04-02, and its later months empty."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO signal (name, turbine, variable, statistic) VALUES "
            "('WTG01.power_mean', 'WTG01', 'power', 'mean'), "
            "('WTG01.power_min', 'WTG01', 'power', 'min'), "
            "('WTG01.power_max', 'WTG01', 'power', 'max')"
        )
        cur = conn.connection.driver_connection.cursor()
        months.create_months(cur, list(months.months_between((2024, 1), (2024, 4))))
        conn.exec_driver_sql(
            "INSERT INTO data SELECT s.id, t, 1.0 FROM signal s, generate_series("
            "TIMESTAMPTZ '2024-01-01 00:00+00', TIMESTAMPTZ '2024-04-02 23:50+00', "
            "INTERVAL '10 minutes') AS t"
        )
    return engine


def test_prune_drops_exactly_the_months_before_the_given_one(filled, target_url):
    before = month_rows(filled)
    assert {name: before[name] for name in FILLED} == {n: d * 144 * 3 for n, d in FILLED.items()}

    result = wind_etl("prune", "--before", "2024-03", database_url=target_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"dropped data_2024_01: {31 * 432} rows",
        f"dropped data_2024_02: {29 * 432} rows",
        f"dropped 2 months before 2024-03, {60 * 432} rows",
    ]
    after = month_rows(filled)
    assert after == {n: r for n, r in before.items() if n not in ("data_2024_01", "data_2024_02")}
    with filled.connect() as conn:
        first = conn.execute(sa.text("SELECT min(timestamp)::text FROM data")).scalar_one()
    assert first == "2024-03-01 00:00:00+00"

    again = wind_etl("prune", "--before", "2024-03", database_url=target_url)
    assert again.returncode == 0 and again.stdout.strip() == "no month before 2024-03 to drop"


def test_a_dry_run_says_what_would_go_and_drops_nothing(filled, target_url):
    before = month_rows(filled)
    result = wind_etl("prune", "--before", "2024-02", "--dry-run", database_url=target_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"would drop data_2024_01: {31 * 432} rows",
        f"would drop 1 month before 2024-02, {31 * 432} rows",
    ]
    assert month_rows(filled) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--before", "2024-13"], "malformed month '2024-13' for --before: expected YYYY-MM"),
        (["--before", "March"], "malformed month 'March'"),
        (["--before", "2024-03-01"], "malformed month '2024-03-01'"),
        ([], "the following arguments are required: --before"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(filled, target_url, args, fragment):
    before = month_rows(filled)
    result = wind_etl("prune", *args, database_url=target_url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wind-etl") and fragment in lines[0]
    assert month_rows(filled) == before
