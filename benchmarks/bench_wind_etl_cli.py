"""The whole ``wind-etl DATE`` process against ``python -c "import wind_pipeline.cli"``.

Both measured in the same run (median of 5 each, after one warm-up), so the ratio holds on a
noisy machine. Run: ``.venv/bin/python benchmarks/bench_wind_etl_cli.py``.
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
RUN_PATH_IMPORTS = "import numpy, pyarrow, httpx, psycopg2"


def median_process_seconds(command: list[str], runs: int = RUNS) -> float:
    subprocess.run(command, check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    label = command[2] if command[1] == "-c" else f"{Path(command[0]).name} {command[1]}"
    print(f"  {label}: " + ", ".join(f"{t:.3f}" for t in times))
    return statistics.median(times)


def main() -> None:
    wind_etl = str(Path(sys.executable).with_name("wind-etl"))
    with stack(days=1) as (api, _source, target):
        command = [wind_etl, DAY.isoformat(), "--api-url", api, "--database-url", target]
        process = median_process_seconds(command)
        floor = median_process_seconds([sys.executable, "-c", "import wind_pipeline.cli"])
        bare = median_process_seconds([sys.executable, "-c", "pass"])
        run_path = median_process_seconds([sys.executable, "-c", RUN_PATH_IMPORTS])
    print(f"wind-etl {DAY} process, median of {RUNS}: {process:.3f} s (target <= 0.8 s)")
    print(f"floor: python -c 'import wind_pipeline.cli': {floor:.3f} s (target <= 0.5 s)")
    print(f"  of which a bare interpreter: {bare:.3f} s")
    print(f"imports a run needs ({RUN_PATH_IMPORTS[7:]}): {run_path:.3f} s")
    print(f"ratio to floor: {process / floor:.2f}x")


if __name__ == "__main__":
    main()
