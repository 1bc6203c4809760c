"""What both Dagster benchmarks need: a throwaway stack and a timer for ``dagster`` commands.

The stack is the real thing on one machine: an embedded PostgreSQL holding the source, target
and Dagster databases, the connector API as its own process, the repo's ``dagster.yaml`` in a
fresh ``DAGSTER_HOME``. Floors are small projects written into the stack's folder and loaded
with the very same ``dagster asset materialize -m <module>`` command.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: the tests' helpers
from wind_pipeline_tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    folder: Path
    env: dict[str, str]
    server: object  # the embedded PostgreSQL
    urls: dict[str, str]  # source, target, dagster

    def write_module(self, name: str, source: str) -> str:
        """A module importable by ``dagster -m`` from this stack's folder; returns its name."""
        (self.folder / f"{name}.py").write_text(source)
        return name


def _wait_healthy(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the connector API at {url} did not become healthy")


@contextmanager
def stack(first_day: date, days: int, turbines: int = 1) -> Iterator[Stack]:
    """PostgreSQL + seeded source + the API over HTTP + a DAGSTER_HOME; all removed on exit."""
    from connector_api.generator import resolve_range, write
    from wind_pipeline import local_postgres

    folder = Path(tempfile.mkdtemp(prefix="wb"))  # short: the socket path lives inside
    server = local_postgres.start_server(folder / "pg", delete_on_exit=True)
    api = None
    try:
        urls = {
            name: local_postgres.create_database(server, name)
            for name in local_postgres.STACK_DATABASES
        }
        if days:
            report = write(urls["source"], *resolve_range(first_day, days, None), turbines=turbines)
            print(
                f"seeded {report.rows_written} rows ({days} days x {turbines} turbines) "
                f"in {report.seconds:.1f} s"
            )
        api_url = f"http://127.0.0.1:{free_port()}"
        api = subprocess.Popen(
            [str(BIN / "connector-api"), "serve", "--port", api_url.rsplit(":", 1)[1],
             "--database-url", urls["source"], "--log-level", "warning"],
        )  # fmt: skip
        _wait_healthy(api_url)
        home = folder / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
            "DAGSTER_HOME": str(home),
            "DAGSTER_POSTGRES_URL": urls["dagster"],
            "CONNECTOR_API_URL": api_url,
            "TARGET_DATABASE_URL": urls["target"],
            "WIND_PIPELINE_START_DATE": first_day.isoformat(),
            "WIND_PIPELINE_STORAGE_DIR": str(folder / "storage"),
        }
        yield Stack(folder, env, server, urls)
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=10)
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def materialize_seconds(stack: Stack, module: str, *partition_args: str) -> float:
    """Wall time of one ``dagster asset materialize`` process, failing loudly if it fails."""
    return materialize_steps(stack, module, *partition_args)[0]


# Dagster's durations: 533ms, 5.6s, 4m52s (format_duration).
STEP_DONE = re.compile(r'Finished execution of step "(\w+)" in (?:(\d+)m)?([\d.]+)(ms|s)')


def materialize_steps(
    stack: Stack, module: str, *partition_args: str
) -> tuple[float, dict[str, float]]:
    """Wall time of one ``dagster asset materialize`` process and each step's seconds, as
    Dagster logged them (its STEP_SUCCESS events)."""
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", module, "--select", "*"]
    began = time.perf_counter()
    result = subprocess.run(
        [*command, *partition_args], env=stack.env, cwd=stack.folder, capture_output=True, text=True
    )
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        sys.exit(f"{module} failed:\n{result.stderr[-4000:]}")
    steps = {
        step: 60 * int(minutes or 0) + float(value) / (1000 if unit == "ms" else 1)
        for step, minutes, value, unit in STEP_DONE.findall(result.stderr)
    }
    return seconds, steps


def medians(
    stack: Stack, modules: list[str], partition_args: list[str], runs: int, *, warm_up: bool = True
) -> dict[str, float]:
    """Median seconds per module (after one warm-up each), runs interleaved against drift."""
    if warm_up:
        for module in modules:
            materialize_seconds(stack, module, *partition_args)
    samples: dict[str, list[float]] = {module: [] for module in modules}
    for run in range(runs):
        for module in modules:
            samples[module].append(materialize_seconds(stack, module, *partition_args))
            print(f"  run {run + 1}/{runs} {module}: {samples[module][-1]:.2f} s", flush=True)
    for module, values in samples.items():  # on a shared machine the best run is the steadier
        print(f"  best of {runs} {module}: {min(values):.2f} s")
    return {module: statistics.median(values) for module, values in samples.items()}


# The floor of both Dagster benchmarks: our asset graph's shape doing no work. Three assets,
# each yielding a lazy value that a no-op IO manager consumes day by day, and the same ten
# per-partition checks, each recording one result per day, as ours do.
NO_WORK = """
import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
days = dg.DailyPartitionsDefinition(start_date="{first_day}", timezone="UTC")
one_run = dg.BackfillPolicy.single_run()
CHECKS = {checks}


def specs(asset):
    return [
        dg.AssetCheckSpec(name, asset=asset, partitions_def=days, blocking=blocking)
        for name, blocking in CHECKS.get(asset, [])
    ]


class NoOpIOManager(dg.ConfigurableIOManager):
    def handle_output(self, context, obj):
        for _ in obj or ():  # consumes a lazy value day by day, as ours does
            pass

    def load_input(self, context):
        return list(context.asset_partition_keys)


def streamed(context, asset):
    yield dg.Output(((key, None) for key in context.partition_keys))
    names = {{s.key: n for n, s in context.assets_def.check_specs_by_output_name.items()}}
    for key in context.selected_asset_check_keys:
        yield dg.Output(None, output_name=names[key])
    for key in context.partition_keys:
        for name, blocking in CHECKS.get(asset, []):
            yield dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(asset), check_name=name, passed=True, partition=key,
                blocking=blocking,
            )


@dg.asset(partitions_def=days, backfill_policy=one_run, check_specs=specs("raw_readings"))
def raw_readings(context):
    yield from streamed(context, "raw_readings")


@dg.asset(partitions_def=days, backfill_policy=one_run, check_specs=specs("ten_minute_stats"))
def ten_minute_stats(context, raw_readings):
    yield from streamed(context, "ten_minute_stats")


@dg.asset(partitions_def=days, backfill_policy=one_run, check_specs=specs("signal_data"))
def signal_data(context, ten_minute_stats):
    yield from streamed(context, "signal_data")


defs = dg.Definitions(
    assets=[raw_readings, ten_minute_stats, signal_data],
    resources={{"io_manager": NoOpIOManager()}},
    executor=dg.in_process_executor,
)
"""
# The check specs of wind_pipeline.definitions (the two circular ones since the directions).
OUR_CHECKS = {
    "raw_readings": [
        ("readings_complete", False),
        ("readings_in_physical_range", False),
        ("readings_not_frozen", False),
    ],
    "ten_minute_stats": [
        ("windows_complete", True),
        ("statistics_consistent", True),
        ("rejected_share", False),
        ("circular_means_in_range", True),
        ("circular_means_meaningful", False),
    ],
    "signal_data": [("target_matches_stats", True), ("default_partition_empty", True)],
}


def no_work_graph(first_day: str, checks: dict) -> str:
    """Source of a module defining the no-work graph, partitions from ``first_day``."""
    return NO_WORK.format(first_day=first_day, checks=checks)


# dagster-postgres as shipped (NullPool: a connection per storage call), for the pool comparison.
PLAIN_STORAGE_YAML = """
storage:
  postgres:
    postgres_url: {env: DAGSTER_POSTGRES_URL}
telemetry:
  enabled: false
"""


def pool_comparison(
    stack: Stack, modules: list[str], partition_args: list[str], runs: int
) -> dict[tuple[str, str], float]:
    """Median seconds per (storage, module): the repo's pooled instance against plain
    dagster-postgres, same database, runs interleaved against drift."""
    import dataclasses

    plain_home = stack.folder / "dagster_home_plain"
    plain_home.mkdir(exist_ok=True)
    (plain_home / "dagster.yaml").write_text(PLAIN_STORAGE_YAML)
    stacks = {
        "pooled": stack,
        "plain": dataclasses.replace(stack, env={**stack.env, "DAGSTER_HOME": str(plain_home)}),
    }
    samples: dict[tuple[str, str], list[float]] = {
        (name, module): [] for name in stacks for module in modules
    }
    for run in range(runs):
        for (name, module), values in samples.items():
            values.append(materialize_seconds(stacks[name], module, *partition_args))
            print(f"  run {run + 1}/{runs} {name} {module}: {values[-1]:.2f} s", flush=True)
    return {key: statistics.median(values) for key, values in samples.items()}
