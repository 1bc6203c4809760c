"""``wind-etl`` as a user runs it: a subprocess against the real API and the real target."""

import os
import subprocess
import sys

import pytest

from wind_pipeline.etl.db import create_engine
from wind_pipeline.etl.schema import create_schema
from wind_pipeline_tests.etl_checks import (
    assert_matches_reference,
    reference,
    target_row_count,
    target_values,
)
from wind_pipeline_tests.ports import free_port as closed_port

VARIABLES = ("wind_speed", "power")


def wind_etl(*args, api_url="http://127.0.0.1:9", database_url="postgresql://x@127.0.0.1:9/t"):
    env = {**os.environ, "CONNECTOR_API_URL": api_url, "TARGET_DATABASE_URL": database_url}
    env.pop("CONNECTOR_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "wind_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wind-etl: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def api(seed_source, serve_api):
    seed_source(days=2)
    return serve_api()


def test_loads_days_and_prints_a_summary_per_day(api, source_url, target_url):
    result = wind_etl("2024-01-01", "--end", "2024-01-02", api_url=api, database_url=target_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2024-01-01: read 1440 rows, 144 windows, wrote 1440 rows; extract")
    assert lines[1].startswith("2024-01-02: read 1440 rows")
    assert lines[2].startswith("total: 2 days, read 2880 rows, wrote 2880 rows")
    assert "load" in lines[0] and "transform" in lines[0]
    expected = reference(source_url, __import__("datetime").date(2024, 1, 1), VARIABLES, days=2)
    assert_matches_reference(target_values(target_url), expected)

    again = wind_etl("2024-01-01", "--end", "2024-01-02", api_url=api, database_url=target_url)
    assert again.returncode == 0 and target_row_count(target_url) == len(expected)


def test_init_db_is_idempotent(target_url):
    for _ in range(2):
        result = wind_etl("init-db", database_url=target_url)
        assert result.returncode == 0 and "schema ready" in result.stdout, result.stderr
    assert target_row_count(target_url) == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["2024-13-01"], "malformed date '2024-13-01' for DATE: expected YYYY-MM-DD"),
        (["2024-01-01", "--end", "yesterday"], "malformed date 'yesterday' for --end"),
        (["2024-01-02", "--end", "2024-01-01"], "--end 2024-01-01 is before DATE 2024-01-02"),
        (["2024-01-01", "--variables", " , "], "--variables is empty"),
        (["2024-01-01", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "the following arguments are required: DATE"),
        (["2024-01-01", "--api-url", "localhost:8000"], "malformed connector API URL"),
        (["2024-01-01", "--retries", "-1"], "--retries must be 0 or more"),
        (["init-db", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_are_one_line(args, fragment):
    assert_one_line_error(wind_etl(*args), 2, fragment)


def test_an_unknown_variable_shows_the_api_message(api, target_url):
    result = wind_etl(
        "2024-01-01", "--variables", "power,gust", api_url=api, database_url=target_url
    )
    assert_one_line_error(result, 4, "unknown variable(s): gust", "allowed:", "wind_speed")


def test_an_empty_day_fails_unless_allowed(api, target_url):
    empty = wind_etl("2024-03-01", api_url=api, database_url=target_url)
    assert_one_line_error(empty, 6, "no source data for 2024-03-01", "--allow-empty")
    assert target_row_count(target_url) == 0

    allowed = wind_etl(
        "2024-03-01", "--end", "2024-03-08", "--allow-empty", api_url=api, database_url=target_url
    )
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.startswith("2024-03-01: read 0 rows, 144 windows, wrote 288 rows")
    assert "total: 8 days, read 0 rows, wrote 2304 rows" in allowed.stdout
    progress = allowed.stderr.splitlines()  # a range of 8 days or more reports progress
    assert progress[0].startswith("wind-etl: fetching 8 days from http://127.0.0.1:")
    assert progress[-1] == "wind-etl: loaded 8/8 days"


def test_an_api_that_is_down_is_retried_then_one_line(target_url):
    down = f"http://127.0.0.1:{closed_port()}"
    result = wind_etl("2024-01-01", "--retries", "1", api_url=down, database_url=target_url)
    assert_one_line_error(result, 3, "unavailable after 2 attempts", down)
    assert target_row_count(target_url) == 0


def test_a_wrong_api_key_is_one_line(seed_source, serve_api, target_url):
    seed_source(days=1)
    result = wind_etl(
        "2024-01-01",
        "--api-key",
        "wrong",
        api_url=serve_api(api_key="right"),
        database_url=target_url,
    )
    assert_one_line_error(result, 4, "(401)", "--api-key")


@pytest.mark.parametrize(
    ("url", "code", "fragment"),
    [
        (f"postgresql://postgres:secret@127.0.0.1:{closed_port()}/target", 5, "while connecting"),
        ("mysql://root@127.0.0.1/target", 2, "unsupported database URL"),
    ],
)
def test_a_bad_database_url_is_one_line(url, code, fragment):
    result = wind_etl("2024-01-01", database_url=url)
    assert_one_line_error(result, code, fragment)
    assert "secret" not in result.stderr


def test_help_shows_both_forms():
    result = wind_etl("--help")
    assert result.returncode == 0
    assert "wind-etl DATE [--end DATE]" in result.stdout
    assert "wind-etl init-db [--database-url URL]" in result.stdout


def test_a_run_imports_neither_pandas_nor_sqlalchemy(api, target_url):
    """The fast path that keeps `wind-etl DATE` well under a second."""
    create_schema(create_engine(target_url))  # a run that creates it needs SQLAlchemy
    code = (
        "import sys; from wind_pipeline.cli import main; main(sys.argv[1:]); "
        "print(sorted(m for m in ('pandas', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "2024-01-01", "--api-url", api, "--database-url", target_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
