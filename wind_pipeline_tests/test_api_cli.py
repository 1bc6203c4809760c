"""``connector-api`` as a user runs it: subprocesses against the real PostgreSQL."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg2
import pytest

from connector_api import db, generator, live
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.ports import free_port
from wind_pipeline_tests.source import last_timestamp

CLI = str(Path(sys.executable).with_name("connector-api"))


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def count_rows(url: str) -> int:
    with psycopg2.connect(db.libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM data")
        return cur.fetchone()[0]


def test_seed_writes_the_rows_it_prints(source_url):
    bare_url = source_url.replace("postgresql+psycopg2://", "postgresql://")  # accepted too
    result = run("seed", "--start", "2024-01-01", "--days", "2", SOURCE_DATABASE_URL=bare_url)

    assert result.returncode == 0, result.stderr
    printed = re.search(
        r"2024-01-01T00:00:00Z to 2024-01-03T00:00:00Z .*: (\d+) rows written", result.stdout
    )
    assert printed and int(printed.group(1)) == count_rows(source_url) == 2880

    again = run(
        "seed", "--start", "2024-01-01", "--end", "2024-01-04", "--database-url", source_url
    )
    assert "1440 rows written of 4320 generated" in again.stdout
    assert count_rows(source_url) == 4320


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-13-01"], "--start '2024-13-01' is not a date; expected YYYY-MM-DD"),
        (["--start", "2024-01-05", "--end", "2024-01-01"], "must be after start"),
        (["--days", "0"], "days must be at least 1"),
        (["--days", "2", "--end", "2024-01-01"], "not allowed with argument"),
        (["--database-url", "mysql://x/y"], "not a PostgreSQL URL"),
        (["--turbines", "0"], "--turbines must be at least 1, got 0"),
        (["--turbines", "many"], "argument --turbines: invalid int value: 'many'"),
        (["--faults-log", "truth.csv"], "--faults-log needs --faults"),
        (["--faults", "--faults-log", "/nonexistent/dir/truth.csv"], "No such file or directory"),
    ],
)
def test_seed_bad_input_is_one_line_and_non_zero(source_url, args, message):
    result = run("seed", *args, SOURCE_DATABASE_URL=source_url)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_seed_a_fleet_with_its_faults_log(source_url, tmp_path):
    log = tmp_path / "truth.csv"
    result = run(
        "seed", "--start", "2024-01-01", "--days", "2", "--turbines", "3", "--faults",
        "--faults-log", str(log), "--database-url", source_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert ", 3 turbines: " in result.stdout
    logged = int(re.search(r"(\d+) faulty readings logged", result.stdout).group(1))
    lines = log.read_text().splitlines()
    assert lines[0] == "turbine_id,timestamp,variable,fault" and len(lines) == logged + 1 > 100
    assert {line.split(",")[0] for line in lines[1:]} == {"WTG01", "WTG02", "WTG03"}
    assert not list(tmp_path.glob("*.partial"))
    gaps = sum(line.endswith(",,gap") for line in lines)
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT turbine_id, count(*) FROM data GROUP BY 1 ORDER BY 1")
        counts = cur.fetchall()
    assert [t for t, _ in counts] == ["WTG01", "WTG02", "WTG03"]
    assert sum(n for _, n in counts) == 3 * 2880 - gaps


def test_seed_if_empty_seeds_once_and_a_long_seed_reports_progress(source_url, tmp_path):
    args = ("seed", "--if-empty", "--start", "2024-01-01", "--database-url", source_url)
    first = run(*args, "--days", "20", "--turbines", "10")  # two blocks of days
    assert first.returncode == 0, first.stderr
    assert "288000 rows written" in first.stdout
    progress = first.stderr.strip().splitlines()
    assert len(progress) >= 2 and all(" rows copied" in line for line in progress)

    log = tmp_path / "truth.csv"
    again = run(*args, "--days", "1", "--faults", "--faults-log", str(log))
    assert again.returncode == 0 and "not seeding" in again.stdout
    assert count_rows(source_url) == 288000
    assert list(tmp_path.iterdir()) == []  # no log of what was not seeded


def test_serve_upgrades_a_previous_release_source(source_url):
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute(
            'CREATE TABLE data ("timestamp" timestamptz PRIMARY KEY, wind_speed double precision,'
            " power double precision, ambient_temperature double precision)"
        )
        cur.execute("INSERT INTO data VALUES ('2024-01-01T00:00Z', 5, 100, 7)")
    port = free_port()
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port), "--database-url", source_url, "--log-level", "error"]
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health").raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT turbine_id, "timestamp", wind_speed, power FROM data')
        assert cur.fetchall() == [("WTG01", datetime(2024, 1, 1, tzinfo=UTC), 5.0, 100.0)]


def test_seed_unreachable_database_is_one_line():
    result = run("seed", "--days", "1", "--database-url", "postgresql://postgres@127.0.0.1:1/x")
    assert result.returncode == 1
    assert "127.0.0.1" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_help_is_fast_and_lists_the_options():
    began = time.perf_counter()
    for command, option in (
        ("seed", "--replace"),
        ("seed", "--turbines"),
        ("seed", "--faults-log"),
        ("seed", "--if-empty"),
        ("serve", "--live"),
    ):
        result = run(command, "--help")
        assert result.returncode == 0 and option in result.stdout
    assert time.perf_counter() - began < 5


def test_serve_refuses_a_busy_port_and_an_unreachable_database(source_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run("serve", "--port", port, "--database-url", source_url)
    assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr

    result = run("serve", "--database-url", "postgresql://postgres@127.0.0.1:1/x")
    assert result.returncode == 1 and "cannot reach the source database" in result.stderr


def test_serve_live_fills_today_and_stops_on_ctrl_c(source_url):
    port = free_port()
    server = subprocess.Popen(
        [CLI, "serve", "--live", "--port", str(port), "--database-url", source_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        health = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health").json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if now - midnight > timedelta(minutes=2):  # otherwise today may still be empty
            assert health["first_timestamp"] == midnight.strftime("%Y-%m-%dT%H:%M:%SZ")
            last = datetime.fromisoformat(health["last_timestamp"])
            assert timedelta(0) < now - last <= timedelta(minutes=3)
    finally:
        server.send_signal(signal.SIGINT)
        began = time.monotonic()
        server.wait(timeout=15)
    assert time.monotonic() - began < 5


def test_live_catch_up_writes_each_passed_minute(seed_source, source_url):
    seed_source(days=1)
    now = datetime(2024, 1, 2, 0, 10, 30, tzinfo=UTC)

    report = live.catch_up(source_url, now=now)

    assert report.rows_written == 10  # 00:00 … 00:09 of the next day; 00:10 has not passed
    assert count_rows(source_url) == 1440 + 10
    assert live.catch_up(source_url, now=now) is None
    assert last_timestamp(source_url) == datetime(2024, 1, 2, 0, 9, tzinfo=UTC)
    assert DAY.isoformat() == "2024-01-01"


def test_live_appends_each_minute_for_every_turbine(seed_source, source_url):
    seed_source(days=1, turbines=3)
    now = datetime(2024, 1, 2, 0, 4, 10, tzinfo=UTC)

    report = live.catch_up(source_url, now=now)

    assert report.turbines == 3 and report.rows_written == 3 * 4
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT turbine_id, count(*) FROM data WHERE timestamp >= '2024-01-02' GROUP BY 1"
            " ORDER BY 1"
        )
        assert cur.fetchall() == [("WTG01", 4), ("WTG02", 4), ("WTG03", 4)]
    # the live minutes are the ones a seed of that day would write
    seeded = generator.generate(datetime(2024, 1, 2, tzinfo=UTC), report.end, turbines=3)
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT wind_speed FROM data WHERE timestamp >= '2024-01-02' ORDER BY turbine_id,"
            " timestamp"
        )
        assert [w for (w,) in cur.fetchall()] == seeded.column("wind_speed").to_pylist()


def test_live_appender_thread_appends_and_stops_promptly(seed_source, source_url):
    seed_source(days=1)
    appender = live.LiveAppender(
        source_url, clock=lambda: datetime(2024, 1, 2, 0, 5, 30, tzinfo=UTC)
    )
    appender.start()
    deadline = time.monotonic() + 10
    while count_rows(source_url) < 1440 + 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    appender.stop()
    appender.join(timeout=2)
    assert not appender.is_alive()  # waiting for the next minute, yet stopped at once
    assert count_rows(source_url) == 1440 + 5
