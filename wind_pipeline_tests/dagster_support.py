"""Helpers shared by the Dagster tests: resources bound to the test servers, the CLI as a user
types it, and the peak memory of the run process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from wind_pipeline.defs.io_managers import PartitionedParquetIOManager
from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Target rows of one turbine-day with no gap: windows x statistics x the two default variables.
ROWS_PER_TURBINE_DAY = 144 * 6 * 2


def resources(api_url: str, target_url: str, storage: Path) -> dict:
    """The three resources of the code location, pointed at the test's servers and folder."""
    return {
        "connector_api": ConnectorApiResource(base_url=api_url, retries=0),
        "target_db": TargetDatabaseResource(url=target_url),
        "io_manager": PartitionedParquetIOManager(base_dir=str(storage)),
    }


def range_tags(first: str, last: str) -> dict[str, str]:
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def dagster_home(tmp_path: Path, postgres_url: str) -> dict[str, str]:
    """A DAGSTER_HOME with the repo's dagster.yaml, storing in ``postgres_url``."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return {"DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_URL": postgres_url}


def materialize_command(*selection: str) -> list[str]:
    command = [str(DAGSTER), "asset", "materialize", "-m", "wind_pipeline.definitions"]
    return [*command, "--select", "*", *selection]


def run_config_args(config: dict) -> list[str]:
    import json

    return ["--config-json", json.dumps(config)]


def full_env(env: dict[str, str | None]) -> dict[str, str]:
    """The test's environment with ``env`` on top; a value None unsets the variable."""
    merged = {**os.environ, **env}
    return {name: value for name, value in merged.items() if value is not None}


def materialize(
    env: dict[str, str | None], *selection: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``dagster asset materialize`` as a user types it (in the test's DAGSTER_HOME, so that a
    local stack's ``./.env`` in the repo root cannot stand in for a setting under test)."""
    return subprocess.run(
        materialize_command(*selection),
        env=full_env(env),
        cwd=env["DAGSTER_HOME"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Measured:
    returncode: int
    stderr: str
    peak_rss: int  # bytes, the largest resident set seen of the run process itself
    peak_child_rss: int  # bytes, of any helper it starts (Dagster's compute-log tailer)


def materialize_measuring_memory(
    env: dict[str, str], *selection: str, timeout: float = 300, interval: float = 0.01
) -> Measured:
    """Run the CLI and sample its resident memory (psutil) every ``interval`` until it exits.

    The run process is the CLI itself (in-process executor); Dagster also starts short-lived
    helpers (a compute-log tailer, ~100 MB of its own), measured apart so they do not add noise.
    """
    log = env["DAGSTER_HOME"] + "/materialize.err"
    with open(log, "w+") as stderr:
        process = subprocess.Popen(
            materialize_command(*selection),
            env={**os.environ, **env},
            cwd=env["DAGSTER_HOME"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        watched = psutil.Process(process.pid)
        peak, peak_child, deadline = 0, 0, time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, watched.memory_info().rss)
                for child in watched.children(recursive=True):
                    peak_child = max(peak_child, child.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(interval)
        if process.poll() is None:
            process.kill()
        process.wait()
        stderr.seek(0)
        return Measured(process.returncode, stderr.read(), peak, peak_child)
