"""What ``wind-etl sync`` and the ``source_changes`` sensor cost, against floors of the same run.

1. Nothing changed, 50 turbines x 30 days: ``GET /days`` alone (the client's call, parsed) against
   ``sync`` in process (``GET /variables`` and ``/turbines``, ``GET /days``, ``loaded_day`` read,
   compare) and ``wind-etl sync`` as a process (Python's start and imports included).
2. One (day, turbine) changed (a reading corrected before each round): ``sync`` against
   ``wind-etl DATE --turbines T`` alone (``run_recorded``), alternated, in process and then as
   the two commands a user types.
3. A tick of the ``source_changes`` sensor with nothing changed (``build_sensor_context`` on an
   ephemeral instance, the same 30 days: the sensor's window ends yesterday, so the source is
   seeded for the 30 days ending yesterday).

Medians of ``--runs`` rounds, same-run ratios (the machine is shared and loaded: absolute times
drift, ratios less). Starts its own PostgreSQL and API on loopback; stops them at the end.

Run: .venv/bin/python benchmarks/bench_sync.py [--fleet 50] [--days 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wind_pipeline import local_postgres

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: the tests' helpers
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_days import execute, free_port, serve, wait_until_up

from wind_pipeline_tests.source import seed  # generator.seed moved there


def median_seconds(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    fleet, days, runs = args.fleet, min(args.days, 30), max(1, min(args.runs, 20))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    first = yesterday - timedelta(days=days - 1)
    os.environ["WIND_PIPELINE_SYNC_LOOKBACK_DAYS"] = str(days)

    import httpx

    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import DirectDatabase
    from wind_pipeline.etl.reload import run_recorded, sync
    from wind_pipeline.etl.schema import upgrade_schema

    with tempfile.TemporaryDirectory(prefix="bsync") as folder:
        server = local_postgres.start_server(Path(folder) / "pg", delete_on_exit=True)
        api = None
        try:
            source = local_postgres.create_database(server, "source")
            target = local_postgres.create_database(server, "target")
            began = time.perf_counter()
            seed(source, start=first, days=days, turbines=fleet)
            print(f"seeded {fleet} turbines x {days} days in {time.perf_counter() - began:.0f} s")
            execute(source, "VACUUM ANALYZE")
            port = free_port()
            api_url = f"http://127.0.0.1:{port}"
            api = subprocess.Popen([sys.executable, __file__, "--serve", source, str(port)])
            with httpx.Client(base_url=api_url, timeout=120) as http:
                wait_until_up(http)
            from wind_pipeline.etl.db import create_engine

            engine = create_engine(target)
            upgrade_schema(engine)
            engine.dispose()
            database = DirectDatabase(target)
            with ConnectorClient(api_url, retries=0) as client:
                began = time.perf_counter()
                run_recorded(client, database, first, yesterday)
                print(f"loaded them in {time.perf_counter() - began:.0f} s (wind-etl, in process)")

                days_s = median_seconds(lambda: client.days(first, yesterday), runs)
                idle_s = median_seconds(lambda: sync(client, database, first, yesterday), runs)
                assert not sync(client, database, first, yesterday).changes
                env = {**os.environ, "CONNECTOR_API_URL": api_url, "TARGET_DATABASE_URL": target}
                command = [sys.executable, "-m", "wind_pipeline.cli", "sync", "--since", str(days)]
                process_s = median_seconds(
                    lambda: subprocess.run(command, env=env, check=True, capture_output=True),
                    runs,
                )
                print(f"\nnothing changed, {fleet} turbines x {days} days (median of {runs}):")
                print(f"  GET /days alone (client, parsed)   {days_s * 1000:8.1f} ms")
                print(
                    f"  sync, in process                   {idle_s * 1000:8.1f} ms  "
                    f"{idle_s / days_s:.2f}x GET /days"
                )
                print(
                    f"  `wind-etl sync` as a process       {process_s * 1000:8.1f} ms  "
                    f"{process_s / days_s:.2f}x GET /days (Python start and imports included)"
                )

                day, turbine = yesterday - timedelta(days=days // 2), "WTG01"
                counter = iter(range(10_000))

                def correct() -> None:
                    execute(
                        source,
                        f"UPDATE data SET power = {1000 + next(counter)} WHERE turbine_id = "
                        f"'{turbine}' AND timestamp = '{day} 12:00+00'",
                    )

                one_s, alone_s = [], []
                for _ in range(runs):  # alternated, so drift hits both alike
                    correct()
                    began = time.perf_counter()
                    done = sync(client, database, first, yesterday)
                    one_s.append(time.perf_counter() - began)
                    assert [(c.day, c.turbine) for c in done.changes] == [(day, turbine)]
                    began = time.perf_counter()
                    run_recorded(client, database, day, day, turbines=turbine)
                    alone_s.append(time.perf_counter() - began)
                one, alone = statistics.median(one_s), statistics.median(alone_s)
                print(f"\none (day, turbine) changed (median of {runs}, alternated):")
                print(f"  wind-etl {day} --turbines {turbine} alone   {alone * 1000:8.1f} ms")
                print(f"  sync                                     {one * 1000:8.1f} ms  "
                      f"{one / alone:.2f}x")  # fmt: skip

                one_p, alone_p = [], []
                load_one = [sys.executable, "-m", "wind_pipeline.cli", day.isoformat()]
                for _ in range(runs):  # the same, each as the command a user types
                    correct()
                    began = time.perf_counter()
                    subprocess.run(command, env=env, check=True, capture_output=True)
                    one_p.append(time.perf_counter() - began)
                    began = time.perf_counter()
                    subprocess.run(
                        [*load_one, "--turbines", turbine], env=env, check=True, capture_output=True
                    )
                    alone_p.append(time.perf_counter() - began)
                one, alone = statistics.median(one_p), statistics.median(alone_p)
                print(f"  as processes: wind-etl DATE --turbines {turbine} {alone * 1000:8.1f} ms, "
                      f"wind-etl sync {one * 1000:8.1f} ms  {one / alone:.2f}x")  # fmt: skip

                tick_s = sensor_tick_seconds(api_url, target, runs)
                print(f"\na source_changes tick, nothing changed (median of {runs}):")
                print(f"  {tick_s * 1000:8.1f} ms  {tick_s / days_s:.2f}x GET /days")
            database.dispose()
        finally:
            if api is not None:
                api.terminate()
                api.wait(timeout=10)
            server.cleanup()


def sensor_tick_seconds(api_url: str, target: str, runs: int) -> float:
    import dagster as dg

    from wind_pipeline.defs.resources import ConnectorApiResource, TargetDatabaseResource
    from wind_pipeline.defs.sensors import source_changes

    bound = {
        "connector_api": ConnectorApiResource(base_url=api_url, retries=0),
        "target_db": TargetDatabaseResource(url=target),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = None
        times = []
        for _ in range(runs + 1):  # the first tick records every day's observation: not counted
            began = time.perf_counter()
            with dg.build_sensor_context(
                instance=instance, resources=bound, cursor=cursor
            ) as context:
                result = source_changes(context)
            times.append(time.perf_counter() - began)
            assert not result.run_requests
            cursor = result.cursor
    return statistics.median(times[1:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
