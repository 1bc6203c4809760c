"""``wind-stack`` end to end: start, materialize one partition through a second ``dagster dev``
beside the stack's (same instance), refuse a busy port, stop everything on Ctrl-C, reuse the data
on a second start, and stop everything when a child dies.

Two stack starts with Dagster in all, because each costs ~20 s of ``dagster dev`` start-up on two
cores; one more without it (``--no-dagster --object-store``), whose IO manager stores in its S3.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
import sqlalchemy as sa

from wind_pipeline_tests.ports import free_port
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)
from wind_pipeline_tests.test_entry_points import code_location_and_history, own_dagster_dev

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 150
RUN_TIMEOUT_S = 120
STOP_LIMIT_S = 15
SEED_DAYS = 2

LAUNCH_RUN = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message }
  ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } }
} }
"""
RUN_STATUS = """
query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }
"""


def wind_stack() -> str:
    return str(Path(sys.executable).parent / "wind-stack")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A short data folder (the PostgreSQL socket lives in it; its path is limited in length)."""
    path = Path(tempfile.mkdtemp(prefix="ws"))
    yield path / "d"
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running_stack(data: Path, api_port: int, dagster_port: int, log: Path):
    """Start ``wind-stack`` as a user's shell would: SIGINT at its default (docs/pitfalls.md), in a
    folder of its own (it writes ./.env there; never into the repo other tests run Dagster in)."""
    argv = [wind_stack(), "--data-dir", str(data), "--api-port", str(api_port),
            "--dagster-port", str(dagster_port), "--seed-days", str(SEED_DAYS),
            "--timeout", str(READY_TIMEOUT_S)]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=data.parent, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    try:
        wait_ready(proc, log)
        yield proc
    finally:
        if proc.poll() is None:  # a failed test must not leave a stack behind
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_ready(proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S + 10
    while "wind-stack: ready" not in log.read_text():
        if proc.poll() is not None:
            pytest.fail(f"wind-stack exited ({proc.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"wind-stack not ready in time:\n{log.read_text()}")
        time.sleep(0.5)


def stack_env(data: Path) -> dict[str, str]:
    """The variables the stack wrote to ./.env (in the folder it started in), as Dagster reads
    them."""
    from wind_pipeline import localenv

    return localenv.read(data.parent / ".env")


def process_tree(data: Path, stack: subprocess.Popen) -> list[psutil.Process]:
    """Every process the stack started, and the PostgreSQL server with its workers."""
    root = psutil.Process(stack.pid)
    postmaster = psutil.Process(int((data / "pg" / "postmaster.pid").read_text().split()[0]))
    return [root, *root.children(recursive=True), postmaster, *postmaster.children(recursive=True)]


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def stop_and_time(data: Path, stack: subprocess.Popen) -> tuple[float, list, int]:
    procs = process_tree(data, stack)
    assert len(procs) >= 6  # stack, API, dagster dev and its services, postgres and workers
    started = time.monotonic()
    stack.send_signal(signal.SIGINT)
    while running(procs) and time.monotonic() - started < STOP_LIMIT_S + 5:
        stack.poll()
        time.sleep(0.1)
    return time.monotonic() - started, running(procs), stack.wait(5)


def launch_partition_run(dagster_url: str, partition: str) -> str:
    params = {
        "selector": {
            "repositoryLocationName": "wind_pipeline",
            "repositoryName": "__repository__",
            "jobName": "wind_etl_job",
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    body = httpx.post(
        f"{dagster_url}/graphql", json={"query": LAUNCH_RUN, "variables": {"params": params}},
        timeout=60,
    ).json()  # fmt: skip
    result = body["data"]["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def wait_for_run(dagster_url: str, run_id: str, log: Path) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    query = {"query": RUN_STATUS, "variables": {"runId": run_id}}
    while time.monotonic() < deadline:
        status = httpx.post(f"{dagster_url}/graphql", json=query, timeout=10).json()
        status = status["data"]["runOrError"]["status"]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            return status
        time.sleep(1)
    pytest.fail(f"run {run_id} still not finished after {RUN_TIMEOUT_S} s:\n{log.read_text()}")


def test_stack_serves_runs_stops_and_restarts(data_dir: Path, tmp_path: Path):
    api_port, dagster_port = free_port(), free_port()
    while dagster_port == api_port:
        dagster_port = free_port()
    dagster_url = f"http://127.0.0.1:{dagster_port}"
    first_day = datetime.now(UTC).date() - timedelta(days=SEED_DAYS)

    with running_stack(data_dir, api_port, dagster_port, tmp_path / "first.log") as stack:
        health = httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=10)
        assert health.status_code == 200
        assert httpx.get(f"{dagster_url}/server_info", timeout=10).status_code == 200
        env = stack_env(data_dir)
        assert env["WIND_PIPELINE_START_DATE"] == first_day.isoformat()

        check_busy_port_is_refused(api_port, tmp_path)
        check_second_stack_on_same_folder_is_refused(data_dir)

        # A second `dagster dev`, typed beside the stack with nothing exported: same instance.
        # A run launched from it executes once, and the stack's own UI lists it. (The stack ran
        # in a folder of its own; the user's dagster dev needs the project's workspace.yaml.)
        shutil.copy(Path(__file__).resolve().parents[1] / "workspace.yaml", data_dir.parent)
        with own_dagster_dev(data_dir.parent, free_port(), tmp_path / "second.log") as second:
            run_id = launch_partition_run(second, first_day.isoformat())
            assert wait_for_run(second, run_id, tmp_path / "second.log") == "SUCCESS"
        _, runs = code_location_and_history(dagster_url)
        assert [(run["runId"], run["status"]) for run in runs] == [(run_id, "SUCCESS")]
        assert run_starts(env, run_id) == 1
        check_target_matches_source(env, first_day)
        seeded_rows = source_rows_before(env, first_day + timedelta(days=SEED_DAYS))

        took, left, code = stop_and_time(data_dir, stack)
        assert left == [] and took <= STOP_LIMIT_S, (took, left)
        assert code == 0

    log = (tmp_path / "first.log").read_text()
    assert "source: empty; generating 2 days" in log

    with running_stack(data_dir, api_port, dagster_port, tmp_path / "second.log") as stack:
        assert "has data already; not seeding" in (tmp_path / "second.log").read_text()
        assert source_rows_before(env, first_day + timedelta(days=SEED_DAYS)) == seeded_rows
        check_target_matches_source(env, first_day)  # the first run's rows are still there
        # A child that dies takes the stack down, named, with everything else it started.
        procs = process_tree(data_dir, stack)
        api = next(p for p in procs if "connector-api" in " ".join(p.cmdline()))
        api.kill()
        assert stack.wait(STOP_LIMIT_S + 5) == 1
        assert running(procs) == []
    assert (
        "connector API exited (status -9); stopping the rest"
        in (tmp_path / "second.log").read_text()
    )


def run_starts(env: dict[str, str], run_id: str) -> int:
    """How many times the run began executing (two daemons on one instance must not double it)."""
    with sa.create_engine(env["DAGSTER_POSTGRES_URL"]).connect() as conn:
        query = sa.text(
            "SELECT count(*) FROM event_logs WHERE run_id = :run AND dagster_event_type = :kind"
        )
        return conn.execute(query, {"run": run_id, "kind": "PIPELINE_START"}).scalar_one()


def check_busy_port_is_refused(busy_port: int, tmp_path: Path) -> None:
    other = tmp_path / "never-created"
    started = time.monotonic()
    result = subprocess.run(
        [wind_stack(), "--data-dir", str(other), "--api-port", str(busy_port),
         "--dagster-port", str(free_port())],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"port {busy_port} on 127.0.0.1 (the connector API) is busy" in result.stderr
    assert "--api-port" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 10
    assert not other.exists()  # nothing started, nothing created


def check_second_stack_on_same_folder_is_refused(data: Path) -> None:
    result = subprocess.run(
        [wind_stack(), "--data-dir", str(data), "--api-port", str(free_port()),
         "--dagster-port", str(free_port())],
        capture_output=True, text=True, timeout=30, cwd=data.parent,
    )  # fmt: skip
    assert result.returncode != 0
    assert "another wind-stack" in result.stderr


def source_rows_before(env: dict[str, str], end: date) -> int:
    with sa.create_engine(env["SOURCE_DATABASE_URL"]).connect() as conn:
        query = sa.text("SELECT count(*) FROM data WHERE timestamp < :end")
        return conn.execute(query, {"end": end}).scalar_one()


def check_target_matches_source(env: dict[str, str], day: date) -> None:
    """The day's statistics in the target equal the SQL reference over the source."""
    start, end = day_bounds(day)
    expected = reference_stats(env["SOURCE_DATABASE_URL"], start, end)
    assert len(expected) == 144 * 2  # one turbine, wind_speed and power
    assert_stats_equal(target_stats(env["TARGET_DATABASE_URL"], start, end), expected)


def start_sleeper() -> subprocess.Popen:
    """A stand-in child: its own session and process group, like the stack's children."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_leftovers_of_a_killed_stack_are_stopped_by_pid_and_start_time(tmp_path: Path):
    from wind_pipeline.stack.processes import Child, record_children, stop_leftovers

    ours, stranger = start_sleeper(), start_sleeper()
    try:
        record = tmp_path / "children.pids"
        record_children(record, [Child("connector API", ours.pid, signal.SIGTERM)])
        # A reused pid: same number, another start time. It must survive.
        started = psutil.Process(stranger.pid).create_time()
        with record.open("a") as out:
            out.write(f"{stranger.pid} {started - 100} SIGTERM dagster dev\n")

        stop_leftovers(record)

        assert ours.wait(5) == -signal.SIGTERM
        assert stranger.poll() is None
        assert not record.exists()
    finally:
        for proc in (ours, stranger):
            proc.kill()
            proc.wait()


def test_a_busy_port_is_named_with_the_option_that_moves_it():
    from wind_pipeline.stack.console import StackError
    from wind_pipeline.stack.network import check_ports_free

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StackError, match=rf"port {port} on 127.0.0.1 .* --dagster-port"):
            check_ports_free("127.0.0.1", {"Dagster UI": (port, "--dagster-port")})
    check_ports_free("127.0.0.1", {"Dagster UI": (port, "--dagster-port")})  # free again


def test_first_seed_of_a_fleet_seeds_every_turbine_once(source_url: str):
    """`--seed-turbines N` reaches the generator; a second start seeds nothing."""
    import sqlalchemy as sa

    from wind_pipeline.stack import source

    assert source.seed_source_if_empty(source_url, 1, turbines=3) is True
    assert source.seed_source_if_empty(source_url, 1, turbines=3) is False
    engine = sa.create_engine(source_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT turbine_id, count(*) FROM data GROUP BY 1 ORDER BY 1")
            ).all()
    finally:
        engine.dispose()
    assert rows == [("WTG01", 1440), ("WTG02", 1440), ("WTG03", 1440)]


def test_object_store_stack_points_the_io_manager_at_its_s3(data_dir: Path, tmp_path: Path):
    """``wind-stack --no-dagster --object-store``: ./.env names the local S3 server, and a
    partition materialized with that environment lands there, one object per asset and day."""
    import os

    import s3fs

    api_port, s3_port = free_port(), free_port()
    log = tmp_path / "stack.log"
    argv = [wind_stack(), "--no-dagster", "--object-store", "--data-dir", str(data_dir),
            "--api-port", str(api_port), "--s3-port", str(s3_port), "--seed-days", "1",
            "--timeout", str(READY_TIMEOUT_S)]  # fmt: skip
    with log.open("w") as out:
        stack = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=data_dir.parent,
        )  # fmt: skip
    try:
        wait_ready(stack, log)
        env = stack_env(data_dir)
        assert env["WIND_PIPELINE_STORAGE_URL"].startswith("s3://")
        assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{s3_port}"
        day = env["WIND_PIPELINE_START_DATE"]
        done = subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
             "-m", "wind_pipeline.definitions", "--select", "*", "--partition", day],
            env={**os.environ, **env}, cwd=data_dir.parent, capture_output=True, text=True,
            timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        s3 = s3fs.S3FileSystem(
            key=env["AWS_ACCESS_KEY_ID"],
            secret=env["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=env["AWS_ENDPOINT_URL"],
        )
        root = env["WIND_PIPELINE_STORAGE_URL"].removeprefix("s3://").rstrip("/")
        stored = sorted(path.removeprefix(root + "/") for path in s3.find(root))
        assert stored == [f"raw_readings/{day}.parquet", f"ten_minute_stats/{day}.parquet"]
        assert not list((data_dir / "storage").rglob("*.parquet"))  # nothing in the folder
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(30)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait(5)
