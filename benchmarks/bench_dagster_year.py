"""A fleet's range through Dagster against its floor, and where the rest goes (issue 18).

Floor, same run, same server: PostgreSQL moving the range's bytes and nothing else, i.e.
``COPY (SELECT turbine_id, timestamp, wind_speed, power …) TO STDOUT`` of the range's source
readings plus ``COPY data FROM STDIN`` of the very target rows the run wrote, into the same
(month-partitioned, keyed) table emptied first; both in binary. Ours: the range as one run of
``dagster asset materialize -m wind_pipeline.definitions --select '*' --partition-range A...B``,
a process as a user starts it, with the repo's ``dagster.yaml`` (pooled PostgreSQL storage,
in-process executor). Target: ours <= 2x the floor (README, "Measured performance").

Where the rest goes, each measured on its own in the same run:

- extract, transform, load: the ETL core's ``run_range`` on the same range in this process
  (its per-day reports), into the same target emptied first;
- Dagster's own cost: the same ``dagster`` command on a graph of our shape doing no work
  (3 assets, 10 per-day checks: start-up, 3 materializations and 10 check results a day);
- what is left (Parquet between the steps, checks and metadata of our assets) is the difference.

``--in-process`` also times ours as ``dg.materialize`` of the same assets, resources and instance
in a Python process of its own (no ``dagster`` command around it: what a test or a notebook
does). ``--plain-storage`` also times ours on dagster-postgres as shipped (a connection per
storage call, what the README's scaling table was measured with before ``instance.py``'s pool);
``--sqlite-storage`` on Dagster's default storage (SQLite files in DAGSTER_HOME, what a
``dagster`` command uses in a DAGSTER_HOME without our ``dagster.yaml``).

    .venv/bin/python benchmarks/bench_dagster_year.py [--turbines 50] [--days 10] [--runs 1]
                                                      [--in-process] [--plain-storage]
                                                      [--sqlite-storage]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import time
from datetime import date, timedelta

from dagster_bench_support import (
    OUR_CHECKS,
    PLAIN_STORAGE_YAML,
    Stack,
    materialize_seconds,
    materialize_steps,
    no_work_graph,
    stack,
)

FIRST_DAY = date(2024, 1, 1)
TARGET_RATIO = 2.0
DAYS_PER_YEAR = 365


class CountingSink:
    """Where the source's COPY goes: bytes counted, nothing kept (a client that reads it all)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, chunk: bytes) -> int:
        self.bytes += len(chunk)
        return len(chunk)


def empty_target(target_url: str) -> None:
    import psycopg2

    with psycopg2.connect(target_url.replace("+psycopg2", "")) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data')")  # none before the first run made the schema
        if cur.fetchone()[0] is not None:
            cur.execute("TRUNCATE data")


def copy_floor(s: Stack, first: date, last: date) -> dict[str, float]:
    """Seconds of the COPY out of the range's readings and the COPY in of its target rows."""
    import psycopg2

    source = psycopg2.connect(s.urls["source"].replace("+psycopg2", ""))
    target = psycopg2.connect(s.urls["target"].replace("+psycopg2", ""))
    try:
        rows = io.BytesIO()  # the rows the run wrote, kept to be written again (not timed)
        with target.cursor() as cur:
            cur.execute("SELECT count(*) FROM data")
            count = cur.fetchone()[0]
            cur.copy_expert("COPY (SELECT * FROM data) TO STDOUT (FORMAT binary)", rows)
            cur.execute("TRUNCATE data")
        target.commit()
        end = last + timedelta(days=1)
        sink = CountingSink()
        began = time.perf_counter()
        with source.cursor() as cur:
            cur.copy_expert(
                "COPY (SELECT turbine_id, timestamp, wind_speed, power FROM data "
                f"WHERE timestamp >= '{first}' AND timestamp < '{end}') TO STDOUT (FORMAT binary)",
                sink,
            )
        copied_out = time.perf_counter()
        rows.seek(0)
        with target.cursor() as cur:
            cur.copy_expert("COPY data FROM STDIN (FORMAT binary)", rows)
        target.commit()
        copied_in = time.perf_counter()
    finally:
        source.close()
        target.close()
    return {
        "copy_out": copied_out - began,
        "copy_in": copied_in - copied_out,
        "source_bytes": sink.bytes,
        "target_rows": count,
    }


def etl_core(s: Stack, first: date, last: date) -> dict[str, float]:
    """``run_range`` in this process into the emptied target: its extract, transform, load."""
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import DirectDatabase
    from wind_pipeline.etl.pipeline import run_range

    empty_target(s.urls["target"])
    target = DirectDatabase(s.urls["target"])
    began = time.perf_counter()
    with ConnectorClient(s.env["CONNECTOR_API_URL"], timeout=600.0) as client:
        reports = run_range(client, target, first, last)
    wall = time.perf_counter() - began
    target.dispose()
    return {
        "wall": wall,
        "extract": sum(r.extract_seconds for r in reports),
        "transform": sum(r.transform_seconds for r in reports),
        "load": sum(r.load_seconds for r in reports),
    }


# The range as `dg.materialize` in a process of its own: the code location's assets, resources
# and the instance of DAGSTER_HOME, no `dagster` command around them.
IN_PROCESS = """
import sys
import dagster as dg
from wind_pipeline.definitions import defs

first, last = sys.argv[1], sys.argv[2]
tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
with dg.DagsterInstance.get() as instance:
    result = dg.materialize(
        [defs.get_assets_def(key) for key in ("raw_readings", "ten_minute_stats", "signal_data")],
        resources=defs.resources, instance=instance, tags=tags,
    )
sys.exit(0 if result.success else 1)
"""


def in_process_seconds(s: Stack, first: date, last: date) -> float:
    """Wall time of the range as ``dg.materialize`` in a fresh Python process."""
    import subprocess
    import sys

    command = [sys.executable, "-c", IN_PROCESS, first.isoformat(), last.isoformat()]
    began = time.perf_counter()
    done = subprocess.run(command, env=s.env, cwd=s.folder, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"dg.materialize failed:\n{done.stderr[-4000:]}")
    return seconds


def other_storage(s: Stack, name: str, yaml: str) -> Stack:
    """The same stack with another ``dagster.yaml`` in a DAGSTER_HOME of its own."""
    home = s.folder / f"dagster_home_{name}"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml)
    return dataclasses.replace(s, env={**s.env, "DAGSTER_HOME": str(home)})


# Dagster's default storage: SQLite files under DAGSTER_HOME.
SQLITE_STORAGE_YAML = "telemetry:\n  enabled: false\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turbines", type=int, default=50, help="fleet size (default 50)")
    parser.add_argument("--days", type=int, default=10, help="days in the range (default 10)")
    parser.add_argument("--runs", type=int, default=1, help="rounds, interleaved (default 1)")
    parser.add_argument("--in-process", action="store_true", help="also ours as dg.materialize")
    parser.add_argument("--plain-storage", action="store_true", help="also ours without pool")
    parser.add_argument("--sqlite-storage", action="store_true", help="also ours on SQLite")
    args = parser.parse_args()
    first, last = FIRST_DAY, FIRST_DAY + timedelta(days=args.days - 1)
    span = ["--partition-range", f"{first.isoformat()}...{last.isoformat()}"]
    turbine_days = args.turbines * args.days
    samples: dict[str, list[float]] = {}

    def sample(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds)
        print(f"  {name:28s} {seconds:8.2f} s", flush=True)

    with stack(FIRST_DAY, days=args.days, turbines=args.turbines) as s:
        no_work = s.write_module("no_work", no_work_graph(first.isoformat(), OUR_CHECKS))
        materialize_seconds(s, no_work, "--partition", first.isoformat())  # storage migrations
        module = "wind_pipeline.definitions"
        runs = [("ours (dagster, pooled)", s)]
        if args.plain_storage:
            runs.append(("ours (dagster, plain)", other_storage(s, "plain", PLAIN_STORAGE_YAML)))
        if args.sqlite_storage:
            runs.append(("ours (dagster, SQLite)", other_storage(s, "sqlite", SQLITE_STORAGE_YAML)))
        if args.in_process:
            runs.append(("ours (dg.materialize)", s))
        for round_ in range(args.runs):
            print(f"round {round_ + 1}/{args.runs}", flush=True)
            # Variants take turns at going first: with a fixed order, the first of each round
            # was the slower one in both rounds of a 50 x 30 run on a shared machine.
            turn = round_ % len(runs)
            for n, (name, where) in enumerate(runs[turn:] + runs[:turn]):
                empty_target(s.urls["target"])
                if name == "ours (dg.materialize)":
                    sample(name, in_process_seconds(where, first, last))
                else:
                    seconds, steps = materialize_steps(where, module, *span)
                    sample(name, seconds)
                    if name == "ours (dagster, pooled)":
                        for step, took in steps.items():
                            sample(f"  step {step}", took)
                if n == 0:  # the target rows of the range are there: the floor's COPY in
                    floor = copy_floor(s, first, last)
                    sample("floor: COPY out", floor["copy_out"])
                    sample("floor: COPY in", floor["copy_in"])
                    sample("floor", floor["copy_out"] + floor["copy_in"])
            core = etl_core(s, first, last)
            for part in ("extract", "transform", "load", "wall"):
                sample(f"run_range {part}", core[part])
            sample("dagster, no work", materialize_seconds(s, no_work, *span))
            one_day = ["--partition", first.isoformat()]
            sample("dagster, no work, one day", materialize_seconds(s, no_work, *one_day))
    m = {name: statistics.median(values) for name, values in samples.items()}
    ours, floor_s = m["ours (dagster, pooled)"], m["floor"]
    per = 1000 / turbine_days
    print(
        f"\n{args.turbines} turbines x {args.days} days ({turbine_days} turbine-days, "
        f"{floor['target_rows']} target rows, {floor['source_bytes'] / 2**20:.0f} MiB of readings "
        f"as binary COPY), median of {args.runs}:"
    )
    print(
        f"  floor (COPY out {m['floor: COPY out']:.2f} s + COPY in {m['floor: COPY in']:.2f} s)"
        f"  {floor_s:7.2f} s  {floor_s * per:6.1f} ms per turbine-day"
    )
    print(
        f"  ours, one range run                  {ours:7.2f} s  {ours * per:6.1f} ms per "
        f"turbine-day  {ours / floor_s:4.2f}x the floor "
        f"({'meets' if ours / floor_s <= TARGET_RATIO else 'MISSES'} <= {TARGET_RATIO}x)"
    )
    for name, label in (
        ("ours (dagster, plain)", "ours, dagster-postgres without pool"),
        ("ours (dagster, SQLite)", "ours, Dagster's default SQLite    "),
    ):
        if name in m:
            print(
                f"  {label}  {m[name]:7.2f} s  {m[name] * per:6.1f} ms per turbine-day  "
                f"{m[name] / ours:4.2f}x pooled"
            )
    if "ours (dg.materialize)" in m:
        alone = m["ours (dg.materialize)"]
        print(
            f"  ours as dg.materialize, own process  {alone:7.2f} s  {alone * per:6.1f} ms per "
            f"turbine-day  {alone / floor_s:4.2f}x the floor, the CLI {ours / alone:4.2f}x it"
        )
    etl = m["run_range extract"] + m["run_range transform"] + m["run_range load"]
    dagster_own = m["dagster, no work"]
    rest = ours - etl - dagster_own
    print("  where ours goes:")
    for label, seconds in (
        ("extract (GET /data, Arrow)", m["run_range extract"]),
        ("transform (QC + statistics)", m["run_range transform"]),
        ("load (replace per day, COPY)", m["run_range load"]),
        ("Dagster: start-up, events of 3 assets + 10 checks a day", dagster_own),
        ("the rest: Parquet between steps, checks, metadata", rest),
    ):
        print(f"    {label:55s} {seconds:7.2f} s  {100 * seconds / ours:5.1f} %")
    steps = [name for name in m if name.startswith("  step ")]
    if steps:
        listed = ", ".join(f"{name.split()[-1]} {m[name]:.2f} s" for name in steps)
        print(f"  ours by Dagster step: {listed}; the rest is the process's start and end")
    print(
        f"  (run_range alone, in-process: {m['run_range wall']:.2f} s, "
        f"{m['run_range wall'] / floor_s:.2f}x the floor)"
    )
    # A year: the start-up (a one-day run of the no-work graph) once, the rest per day.
    start = m["dagster, no work, one day"]
    year = start + (ours - start) / args.days * DAYS_PER_YEAR
    print(
        f"  a year of this fleet, extrapolated (start-up {start:.1f} s once, the rest per day): "
        f"{year:.0f} s ({year / 60:.1f} min)"
    )


if __name__ == "__main__":
    main()
