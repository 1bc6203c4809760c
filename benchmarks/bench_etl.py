"""ETL in-process: one day (extract over HTTP + transform + load) and a year in one call.

Floor, measured in the same run on the same server: PostgreSQL aggregating the day itself with
``date_bin`` into a scratch table (INSERT … SELECT), i.e. the work without any transport.
Run: ``.venv/bin/python benchmarks/bench_etl.py``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

DAY = date(2024, 1, 1)
YEAR_LAST = date(2024, 12, 31)
VARIABLES = ["wind_speed", "power"]
DAY_RUNS = 30
YEAR_RUNS = 2

FLOOR_SQL = """
INSERT INTO scratch_stats
SELECT date_bin('10 minutes', "timestamp", TIMESTAMPTZ '2000-01-01 00:00:00+00') AS w,
       count(wind_speed), avg(wind_speed), min(wind_speed), max(wind_speed),
       stddev_samp(wind_speed),
       count(power), avg(power), min(power), max(power), stddev_samp(power)
FROM data WHERE "timestamp" >= '2024-01-01T00:00:00Z' AND "timestamp" < '2024-01-02T00:00:00Z'
GROUP BY 1
"""


@contextlib.contextmanager
def stack(days: int, targets: tuple[str, ...] = ("target",)) -> Iterator[tuple[str, ...]]:
    """Embedded PostgreSQL with a seeded source and empty targets, ``connector-api serve``.

    The API runs as its own process, as in production. Yields (API URL, source URL, then one URL
    per target); everything is stopped and removed at exit.
    """
    from connector_api.generator import seed
    from wind_pipeline import local_postgres
    from wind_pipeline.etl.db import create_engine
    from wind_pipeline.etl.schema import create_schema

    folder = tempfile.mkdtemp(prefix="wbench")  # short: the socket path is limited
    server = local_postgres.start_server(f"{folder}/pg", delete_on_exit=True)
    try:
        source = local_postgres.create_database(server, "source")
        seed(source, start=DAY, days=days)
        urls = [local_postgres.create_database(server, name) for name in targets]
        for url in urls:
            engine = create_engine(url)
            create_schema(engine)
            engine.dispose()
        with serve_api(source) as api:
            yield api, source, *urls
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def serve_api(source_url: str) -> Iterator[str]:
    """``connector-api serve`` on a free loopback port until the block ends."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).with_name("connector-api")), "serve", "--port", str(port)]
    command += ["--database-url", source_url, "--log-level", "warning"]
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("connector-api serve did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def median_seconds(run: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def floor_run(source_url: str) -> Callable[[], None]:
    import psycopg2

    conn = psycopg2.connect(source_url.replace("+psycopg2", ""))
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS scratch_stats (w timestamptz, "
            + ", ".join(f"c{i} double precision" for i in range(10))
            + ")"
        )
    conn.commit()

    def run() -> None:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE scratch_stats")
            cur.execute(FLOOR_SQL)
        conn.commit()

    return run


def main() -> None:
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import create_engine
    from wind_pipeline.etl.pipeline import run_range

    with stack(days=366, targets=("daily", "yearly")) as (api, source, daily, yearly):
        daily_engine, yearly_engine = create_engine(daily), create_engine(yearly)
        reports = []
        days = iter(DAY + timedelta(days=i) for i in range(366))

        with ConnectorClient(api) as client:

            def new_day() -> None:  # what the daily schedule does: a day not loaded before
                day = next(days)
                reports.extend(run_range(client, daily_engine, day, day, VARIABLES))

            def same_day() -> None:  # a re-run: the day's rows are replaced
                run_range(client, daily_engine, DAY, DAY, VARIABLES)

            def year() -> None:
                run_range(client, yearly_engine, DAY, YEAR_LAST, VARIABLES)

            one_day = median_seconds(new_day, DAY_RUNS)
            reload_day = median_seconds(same_day, DAY_RUNS)
            floor = median_seconds(floor_run(source), DAY_RUNS)
            first_year = median_seconds(year, 1, warmup=0)  # into an empty target
            reload_year = median_seconds(year, YEAR_RUNS, warmup=0)  # replacing every row
        daily_engine.dispose()
        yearly_engine.dispose()
    stages = {
        stage: statistics.median(getattr(r, f"{stage}_seconds") for r in reports)
        for stage in ("extract", "transform", "load")
    }
    print(f"ETL one new day in-process, median of {DAY_RUNS}: {one_day * 1e3:.1f} ms (<= 25 ms)")
    print("  stages: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in stages.items()))
    print(f"  re-load of the same day, median of {DAY_RUNS}: {reload_day * 1e3:.1f} ms")
    print(f"floor: PostgreSQL date_bin INSERT ... SELECT of the day: {floor * 1e3:.1f} ms")
    ratios = f"new day {one_day / floor:.2f}x, re-load {reload_day / floor:.2f}x"
    print(f"ratio to floor: {ratios} (target <= 3x)")
    print(f"ETL one year (366 days) in one call, first load: {first_year:.2f} s (target <= 5 s)")
    print(f"  re-load replacing the year's rows, median of {YEAR_RUNS}: {reload_year:.2f} s")


if __name__ == "__main__":
    main()
