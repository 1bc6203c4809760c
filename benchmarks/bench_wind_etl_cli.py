"""The whole ``wind-etl DATE`` process, and what two former speed tricks would still buy it.

Measured in the same run (median of 5 each, after one warm-up): the process, with the default
variables and with ``--variables all``; the imports a run
cannot avoid; and, for the decisions of issue 9 item 8, the cost in a fresh process of the
SQLAlchemy engine against the bare psycopg2 connection (``DirectDatabase``), and of httpx's
optional command-line import that a ``sys.modules`` entry used to skip.
Run: ``.venv/bin/python benchmarks/bench_wind_etl_cli.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_etl import DAY, stack

RUNS = 5
# What `wind-etl DATE` must import whatever we do: the rest of its time is the work.
RUN_PATH_IMPORTS = "import numpy, pyarrow, pyarrow.compute, httpx, psycopg2"
ENGINE = "from wind_pipeline.etl.db import create_engine; create_engine({url!r}).raw_connection()"
DIRECT = "from wind_pipeline.etl.db import DirectDatabase; DirectDatabase({url!r}).raw_connection()"
HTTPX = "import httpx"
HTTPX_WITHOUT_MAIN = "import sys; sys.modules['httpx._main'] = None; import httpx"


def median_process_seconds(command: list[str], runs: int = RUNS) -> float:
    subprocess.run(command, check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    label = command[2] if command[1] == "-c" else f"{Path(command[0]).name} {command[1]}"
    print(f"  {label[:90]}: " + ", ".join(f"{t:.3f}" for t in times))
    return statistics.median(times)


def python(code: str) -> float:
    return median_process_seconds([sys.executable, "-c", code])


def main() -> None:
    wind_etl = str(Path(sys.executable).with_name("wind-etl"))
    with stack(days=1) as (api, _source, target):
        command = [wind_etl, DAY.isoformat(), "--api-url", api, "--database-url", target]
        process = median_process_seconds(command)
        every = median_process_seconds([*command, "--variables", "all"])  # 6 variables, 5 columns
        floor = python("import wind_pipeline.cli")
        bare = python("pass")
        run_path = python(RUN_PATH_IMPORTS)
        engine = python(ENGINE.format(url=target))
        direct = python(DIRECT.format(url=target))
        httpx_all = python(HTTPX)
        httpx_lean = python(HTTPX_WITHOUT_MAIN)
    print(f"wind-etl {DAY} process, median of {RUNS}: {process:.3f} s (target <= 0.8 s)")
    print(
        f"wind-etl {DAY} --variables all (the directions and yaw_error too): {every:.3f} s "
        f"({every / process:.2f}x the default pair)"
    )
    print(f"floor: python -c 'import wind_pipeline.cli': {floor:.3f} s (target <= 0.5 s)")
    print(f"  of which a bare interpreter: {bare:.3f} s")
    print(f"imports a run needs ({RUN_PATH_IMPORTS[7:]}): {run_path:.3f} s")
    print(f"ratio to floor: {process / floor:.2f}x")
    sa_cost = engine - direct
    print(
        f"SQLAlchemy engine instead of DirectDatabase: +{sa_cost:.3f} s a process "
        f"({(process + sa_cost) / process:.2f}x the run: {process + sa_cost:.3f} s)"
    )
    main_cost = httpx_all - httpx_lean
    print(
        f"httpx's command-line import (the old sys.modules entry skipped it): +{main_cost:.3f} s "
        f"({process / max(process - main_cost, 1e-9):.2f}x the run)"
    )


if __name__ == "__main__":
    main()
