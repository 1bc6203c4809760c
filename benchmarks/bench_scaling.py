"""The scaling table (issue 12): seed, API read, wind-etl and the Dagster backfill for a fleet of
(1, 10, 50) turbines over (1, 30, 365) days, each with wall time, rows per second and peak RSS.

Every stage runs as its own process, the way a user runs it, and is measured from outside
(psutil, sampled every 20 ms: the process's own resident set; Dagster's short-lived compute-log
helper is reported apart): ``connector-api seed``, a reader of ``GET /data`` month by month with
the core's client (what the pipeline's extract does), ``wind-etl FIRST --end LAST`` and
``dagster asset materialize --partition-range`` into a target of its own. Targets (docs/rules.md):
the 50-turbine year through Dagster <= 10 minutes end to end on 2 cores, peak RSS <= 1 GB.

    .venv/bin/python benchmarks/bench_scaling.py [--turbines 1,10,50] [--days 1,30,365]
                                                 [--stages seed,api,etl,dagster]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta

import psutil
from dagster_bench_support import BIN, stack

FIRST_DAY = date(2024, 1, 1)
STAGES = ("seed", "api", "etl", "dagster")
MB = 1 << 20
BUDGET_SECONDS, BUDGET_RSS = 600, 1 << 30  # the 50-turbine year through Dagster

API_READER = """
import sys
from datetime import datetime, timedelta, timezone
from wind_pipeline.etl.client import ConnectorClient

url, first, days = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
first = first.replace(tzinfo=timezone.utc)
client = ConnectorClient(url, timeout=600.0)
rows, day = 0, 0
while day < days:  # a month a request, as bounded as the pipeline's blocks
    span = min(31, days - day)
    start = first + timedelta(days=day)
    rows += client.fetch(start, start + timedelta(days=span), ["wind_speed", "power"]).num_rows
    day += span
print(rows)
"""


@dataclass
class Measured:
    seconds: float
    peak_rss: int
    peak_helper_rss: int
    stdout: str


def measured(command: list[str], env: dict[str, str], cwd: str | None = None) -> Measured:
    """Run ``command`` to completion, sampling its resident memory; fail loudly on failure.

    Its output goes to files, not pipes: a year's Dagster log would fill a pipe nobody reads
    while the process runs, and block it.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        watched = psutil.Process(process.pid)
        peak = helper = 0
        while process.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
                for child in watched.children(recursive=True):
                    helper = max(helper, child.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        sys.exit(f"{command[0]} failed ({process.returncode}):\n{stderr[-4000:]}")
    return Measured(seconds, peak, helper, stdout)


def target_rows(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM data")).scalar_one()
    engine.dispose()
    return rows


def run_case(turbines: int, days: int, stages: list[str]) -> list[tuple]:
    last = FIRST_DAY + timedelta(days=days - 1)
    results = []
    with stack(FIRST_DAY, days=0, turbines=turbines) as s:
        from wind_pipeline import local_postgres

        env = s.env
        seed = measured(  # always: the other stages read what it writes
            [str(BIN / "connector-api"), "seed", "--start", FIRST_DAY.isoformat(),
             "--days", str(days), "--turbines", str(turbines),
             "--database-url", s.urls["source"]],
            env,
        )  # fmt: skip
        if "seed" in stages:
            results.append(("seed", seed, turbines * days * 1440))
        if "api" in stages:
            api = measured(
                [sys.executable, "-c", API_READER, env["CONNECTOR_API_URL"],
                 FIRST_DAY.isoformat(), str(days)],
                env,
            )  # fmt: skip
            results.append(("API read", api, int(api.stdout.strip())))
        if "etl" in stages:
            etl_target = local_postgres.create_database(s.server, "target_etl")
            etl = measured(
                [str(BIN / "wind-etl"), FIRST_DAY.isoformat(), "--end", last.isoformat(),
                 "--api-url", env["CONNECTOR_API_URL"], "--database-url", etl_target],
                env,
            )  # fmt: skip
            results.append(("wind-etl", etl, target_rows(etl_target)))
        if "dagster" in stages:
            command = [str(BIN / "dagster"), "asset", "materialize", "-m",
                       "wind_pipeline.definitions", "--select", "*", "--partition-range",
                       f"{FIRST_DAY.isoformat()}...{last.isoformat()}"]  # fmt: skip
            run = measured(command, env, cwd=str(s.folder))
            results.append(("Dagster backfill", run, target_rows(env["TARGET_DATABASE_URL"])))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turbines", default="1,10,50", help="fleet sizes (default 1,10,50)")
    parser.add_argument("--days", default="1,30,365", help="range lengths (default 1,30,365)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"of {','.join(STAGES)}")
    args = parser.parse_args()
    stages = args.stages.split(",")
    table = []
    for turbines in (int(t) for t in args.turbines.split(",")):
        for days in (int(d) for d in args.days.split(",")):
            print(f"{turbines} turbines x {days} days ...", flush=True)
            for stage, m, rows in run_case(turbines, days, stages):
                table.append((turbines, days, stage, m, rows))
                print(
                    f"  {stage:17s} {m.seconds:8.1f} s  {rows:>10d} rows  "
                    f"{rows / m.seconds:>9.0f} rows/s  peak RSS {m.peak_rss / MB:6.0f} MB",
                    flush=True,
                )
    print("\n| turbines | days | stage | wall s | rows | rows/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for turbines, days, stage, m, rows in table:
        print(
            f"| {turbines} | {days} | {stage} | {m.seconds:.1f} | {rows} | "
            f"{rows / m.seconds:.0f} | {m.peak_rss / MB:.0f} |"
        )
    for turbines, days, stage, m, _ in table:
        if (turbines, days, stage) == (50, 365, "Dagster backfill"):
            ok = m.seconds <= BUDGET_SECONDS and m.peak_rss <= BUDGET_RSS
            print(
                f"\n50-turbine year through Dagster: {m.seconds:.0f} s, peak RSS "
                f"{m.peak_rss / MB:.0f} MB: {'meets' if ok else 'MISSES'} <= 600 s and <= 1 GB"
            )
    helpers = max((m.peak_helper_rss for *_, m, _ in table), default=0)
    print(f"(largest helper process seen: {helpers / MB:.0f} MB)")


if __name__ == "__main__":
    main()
