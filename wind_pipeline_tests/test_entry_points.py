"""The three entry points as a user types them, in a fresh clone, in a new shell with nothing
exported (``env -i`` with PATH and HOME only): ``dagster dev``,
``dagster asset materialize … --partition D`` and ``wind-etl D``.

With a running stack (``wind-stack --no-dagster``, the ``make services`` mode) they use its
databases and its Dagster instance, because the stack wrote ``./.env`` and Dagster (and
``wind-etl``, through ``wind_pipeline.localenv``) read it. Without one, each says in one line how
to start one and exits non-zero, no traceback. The stack's own output goes into a reader that
exits at once: a broken pipe must not keep the stack from stopping everything on SIGINT.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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

from wind_pipeline import localenv
from wind_pipeline_tests.ports import free_port
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 120
STOP_LIMIT_S = 15
SEED_DAYS = 2
MATERIALIZE = [
    "dagster",
    "asset",
    "materialize",
    "-m",
    "wind_pipeline.definitions",
    "--select",
    "*",
]
HISTORY = """{ runsOrError { __typename ... on Runs { results { runId status } } }
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"""


@pytest.fixture
def clone() -> Iterator[Path]:
    """What `git clone` of the working tree gives: the files git tracks or would track, and no
    .env, .wind or .venv. Under a short path: the stack's PostgreSQL socket lives inside it."""
    root = Path(tempfile.mkdtemp(prefix="wc"))
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
        check=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, (entry.decode() for entry in listed)):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def clean_environment() -> dict[str, str]:
    """A new shell with nothing exported: the project's commands on PATH, and HOME."""
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}


def typed(folder: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(argv), cwd=folder, env=clean_environment(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def assert_says_how_to_start_a_stack(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    hints = [line for line in output.splitlines() if "make run" in line]
    assert len(hints) == 1 and "make services" in hints[0], output[-2000:]


COMMANDS = {
    "materialize": [*MATERIALIZE, "--partition", "2024-01-01"],
    "dagster dev": ["dagster", "dev", "-p", "0"],  # never gets as far as binding the port
    "wind-etl": ["wind-etl", "2024-01-01"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_without_any_stack_each_command_says_how_to_start_one(clone, command):
    """No ./.env at all (a fresh clone): Dagster reads the repo's dagster.yaml, whose storage
    finds no DAGSTER_POSTGRES_URL; wind-etl is told no target."""
    assert_says_how_to_start_a_stack(typed(clone, *COMMANDS[command], timeout=60))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_with_a_stopped_stack_each_command_says_how_to_start_it(clone, command):
    """./.env written by a stack that is no longer running: no retrying against its socket."""
    stack_dir = clone / ".wind"
    url = f"postgresql+psycopg2://postgres:@/{{}}?host={stack_dir / 'pg'}"
    localenv.write(clone / ".env", {
        localenv.STACK_DIR_ENV: str(stack_dir), "TARGET_DATABASE_URL": url.format("target"),
        "DAGSTER_POSTGRES_URL": url.format("dagster"), "DAGSTER_HOME": str(clone / ".wind" / "h"),
        "CONNECTOR_API_URL": f"http://127.0.0.1:{free_port()}",
    })  # fmt: skip
    (stack_dir / "h").mkdir(parents=True)
    shutil.copy(clone / "dagster.yaml", stack_dir / "h")
    started = time.monotonic()

    result = typed(clone, *COMMANDS[command], timeout=60)

    assert_says_how_to_start_a_stack(result)
    assert "is not running" in result.stderr
    assert time.monotonic() - started < 20  # no connection retries against a stopped stack


@contextlib.contextmanager
def services_stack(folder: Path, log: Path) -> Iterator[subprocess.Popen]:
    """``wind-stack --no-dagster`` in ``folder``, typed with nothing exported, its stdout piped
    into a reader that exits after one byte, SIGINT at its default (docs/pitfalls.md)."""
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    argv = [sys.executable, "-m", "wind_pipeline.stack", "--no-dagster", "--data-dir", ".wind",
            "--api-port", str(free_port()), "--seed-days", str(SEED_DAYS),
            "--timeout", str(READY_TIMEOUT_S)]  # fmt: skip
    with log.open("w") as errors:
        stack = subprocess.Popen(
            argv, cwd=folder, env=clean_environment(), stdin=subprocess.DEVNULL,
            stdout=reader.stdin, stderr=errors,
            preexec_fn=restore_sigint,
        )  # fmt: skip
    reader.stdin.close()
    try:
        wait_for_api(folder, stack, log)
        assert reader.wait(10) == 0  # the reader has gone: every later write of the stack breaks
        yield stack
    finally:
        if stack.poll() is None:
            stack.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                stack.wait(30)


def wait_for_api(folder: Path, stack: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert stack.poll() is None, log.read_text()
        url = localenv.read(folder / ".env").get("CONNECTOR_API_URL")
        with contextlib.suppress(httpx.HTTPError):
            if url and httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"the stack's API did not answer in time:\n{log.read_text()}")


def stack_processes(folder: Path, stack: subprocess.Popen) -> list[psutil.Process]:
    """The stack, its children, and the PostgreSQL server with its workers."""
    root = psutil.Process(stack.pid)
    pid = int((folder / ".wind" / "pg" / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    return [root, *root.children(recursive=True), postmaster, *postmaster.children()]


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def check_target(env: dict[str, str], day: date) -> None:
    start, end = day_bounds(day)
    expected = reference_stats(env["SOURCE_DATABASE_URL"], start, end)
    assert len(expected) == 144 * 2
    assert_stats_equal(target_stats(env["TARGET_DATABASE_URL"], start, end), expected)


def restore_sigint() -> None:
    """A background job of a non-interactive shell ignores SIGINT (docs/pitfalls.md); Dagster maps
    SIGTERM onto SIGINT's disposition: without this, neither would stop ``dagster dev``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def own_dagster_dev(folder: Path, port: int, log: Path) -> Iterator[str]:
    """``dagster dev`` typed in ``folder`` by the user, beside the stack; stopped after."""
    with log.open("w") as out:
        dev = subprocess.Popen(
            ["dagster", "dev", "-p", str(port)], cwd=folder, env=clean_environment(),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=restore_sigint,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert dev.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(5)


def code_location_and_history(url: str) -> tuple[list[dict], list[dict]]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        data = httpx.post(f"{url}/graphql", json={"query": HISTORY}, timeout=30).json()["data"]
        entries = data["workspaceOrError"]["locationEntries"]
        if all(entry["loadStatus"] == "LOADED" for entry in entries) or time.monotonic() > deadline:
            return entries, data["runsOrError"]["results"]
        time.sleep(1)


@pytest.mark.slow
def test_a_fresh_clone_with_a_running_stack(clone, tmp_path):
    first = datetime.now(UTC).date() - timedelta(days=SEED_DAYS)
    with services_stack(clone, tmp_path / "stack.log") as stack:
        env = localenv.read(clone / ".env")
        assert env["WIND_PIPELINE_START_DATE"] == first.isoformat()

        materialized = typed(clone, *MATERIALIZE, "--partition", first.isoformat())
        assert materialized.returncode == 0, materialized.stderr[-3000:]
        check_target(env, first)

        loaded = typed(clone, "wind-etl", (first + timedelta(days=1)).isoformat())
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        check_target(env, first + timedelta(days=1))

        with own_dagster_dev(clone, free_port(), tmp_path / "dagster.log") as ui:
            entries, runs = code_location_and_history(ui)
        assert [(e["name"], e["loadStatus"]) for e in entries] == [("wind_pipeline", "LOADED")]
        assert [run["status"] for run in runs] == ["SUCCESS"]  # the materialize run above

        procs = stack_processes(clone, stack)
        assert len(procs) >= 4  # stack, API, postmaster and its workers
        stopping = time.monotonic()
        stack.send_signal(signal.SIGINT)
        assert stack.wait(STOP_LIMIT_S) == 0
        while alive(procs) and time.monotonic() - stopping < STOP_LIMIT_S:
            time.sleep(0.1)
        assert alive(procs) == []
