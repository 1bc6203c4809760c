"""The ETL core in-process, and ``wind-etl`` processes for a growing fleet (the README's figures).

- One new day in-process (extract over HTTP + transform with QC + load, the catalogue read once
  per run, and read per call for comparison) against its floor, measured in the same run: a
  constant-answer HTTP endpoint (the API's least possible answer) plus a bare COPY of the same
  target rows into a table with the same keys (target <= 1.5x).
- One year (366 days) in one ``run_range`` call: first load and re-load.
- QC on against QC off in the transform, for a day and for the year (target <= 1.5x).
- ``wind-etl DATE`` processes for 1, 10 and 50 turbines: seconds per turbine-day.

Run: ``.venv/bin/python benchmarks/bench_etl.py`` (everything) or ``… bench_etl.py day`` (only the
day against its floor, about a minute).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: the tests' helpers
from wind_pipeline_tests.ports import free_port

DAY = date(2024, 1, 1)
YEAR_LAST = date(2024, 12, 31)
DAY_RUNS = 30
YEAR_RUNS = 2
FLEETS = (1, 10, 50)
FLEET_RUNS = 3
CONSTANT_APP = """
import sys, uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
app = FastAPI()
app.get("/")(lambda: Response(b"[]", media_type="application/json"))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@contextlib.contextmanager
def stack(
    days: int, targets: tuple[str, ...] = ("target",), turbines: int = 1
) -> Iterator[tuple[str, ...]]:
    """Embedded PostgreSQL with a seeded source and empty targets, ``connector-api serve``.

    The API runs as its own process, as in production. Yields (API URL, source URL, then one URL
    per target); everything is stopped and removed at exit.
    """
    from connector_api.generator import resolve_range, write
    from wind_pipeline import local_postgres
    from wind_pipeline.etl.db import create_engine
    from wind_pipeline.etl.schema import upgrade_schema

    folder = tempfile.mkdtemp(prefix="wbench")  # short: the socket path is limited
    server = local_postgres.start_server(f"{folder}/pg", delete_on_exit=True)
    try:
        source = local_postgres.create_database(server, "source")
        write(source, *resolve_range(DAY, days, None), turbines=turbines, faults=True)
        urls = [local_postgres.create_database(server, name) for name in targets]
        for url in urls:
            engine = create_engine(url)
            upgrade_schema(engine)
            engine.dispose()
        with serve_api(source) as api:
            yield api, source, *urls
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def served(command: list[str], url: str, ready: str) -> Iterator[str]:
    import httpx

    process = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}{ready}").status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{command[0]} did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def serve_api(source_url: str):
    """``connector-api serve`` on a free loopback port until the block ends."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("connector-api")), "serve", "--port", str(port)]
    command += ["--database-url", source_url, "--log-level", "warning"]
    return served(command, f"http://127.0.0.1:{port}", "/health")


def serve_constant():
    """A FastAPI endpoint on uvicorn answering a constant ``[]``: the HTTP part of the floor."""
    port = free_port()
    return served([sys.executable, "-c", CONSTANT_APP, str(port)], f"http://127.0.0.1:{port}", "/")


def median_seconds(run: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def copy_floor(target_url: str, day: date) -> Callable[[], None]:
    """A bare COPY of the day's target rows (as loaded) into a table with the same keys."""
    import psycopg2

    from wind_pipeline.etl.load import COPY_SQL

    conn = psycopg2.connect(target_url.replace("+psycopg2", ""))
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE scratch (LIKE data INCLUDING ALL)")
        cur.execute(
            "ALTER TABLE scratch ADD FOREIGN KEY (signal_id) REFERENCES signal (id) NOT ENFORCED"
        )
        out = io.BytesIO()
        cur.copy_expert(
            f"COPY (SELECT timestamp, signal_id, value FROM data "
            f"WHERE timestamp >= '{day}Z' AND timestamp < '{day + timedelta(days=1)}Z') "
            "TO STDOUT WITH (FORMAT binary)",
            out,
        )
    conn.commit()
    payload = out.getvalue()
    copy = COPY_SQL.replace("COPY data", "COPY scratch")

    def run() -> None:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE scratch")
            cur.copy_expert(copy, io.BytesIO(payload))
        conn.commit()

    return run


def day_against_floor(client, engine, target_url: str, constant: str, days) -> dict:
    """One new day through the spine, with the catalogue read once (a run or a range) and read
    per call (``run_range`` alone: two more GETs), against the floor measured beside it."""
    import httpx

    from wind_pipeline.etl.pipeline import run_range, select

    selection = select(client)
    reports = []

    def new_day() -> None:  # what the daily schedule does: a day not loaded before
        day = next(days)
        reports.extend(run_range(client, engine, day, day, selection=selection))

    def new_day_reading_the_catalogue() -> None:
        day = next(days)
        run_range(client, engine, day, day)

    def same_day() -> None:  # a re-run: the day's rows are replaced
        run_range(client, engine, DAY, DAY, selection=selection)

    one_day = median_seconds(new_day, DAY_RUNS)
    with_catalogue = median_seconds(new_day_reading_the_catalogue, DAY_RUNS)
    reload_day = median_seconds(same_day, DAY_RUNS)
    http = httpx.Client()
    http_floor = median_seconds(lambda: http.get(constant), DAY_RUNS)
    http.close()
    copy = median_seconds(copy_floor(target_url, DAY), DAY_RUNS)
    stages = {
        stage: statistics.median(getattr(r, f"{stage}_seconds") for r in reports)
        for stage in ("extract", "transform", "load")
    }
    floor = http_floor + copy
    print(f"ETL one new day in-process, catalogue read once, median of {DAY_RUNS}: "
          f"{one_day * 1e3:.1f} ms")  # fmt: skip
    print("  stages: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in stages.items()))
    print(f"  the same with the catalogue read per call: {with_catalogue * 1e3:.1f} ms")
    print(f"  re-load of the same day, median of {DAY_RUNS}: {reload_day * 1e3:.1f} ms")
    print(
        f"floor: constant-answer GET {http_floor * 1e3:.2f} ms + bare COPY of the day's "
        f"{reports[0].rows_written} rows {copy * 1e3:.2f} ms = {floor * 1e3:.2f} ms"
    )
    print(
        f"ratio to floor: new day {one_day / floor:.2f}x (catalogue per call "
        f"{with_catalogue / floor:.2f}x), re-load {reload_day / floor:.2f}x (target <= 1.5x)"
    )
    return {"one_day": one_day, "floor": floor}


def day_only() -> None:
    """Only the day against its floor (``bench_etl.py day``): a short run on a loaded machine."""
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import create_engine

    with stack(days=3 * DAY_RUNS + 8) as (api, _source, target):
        engine = create_engine(target)
        days = iter(DAY + timedelta(days=i) for i in range(3 * DAY_RUNS + 8))
        with ConnectorClient(api) as client, serve_constant() as constant:
            day_against_floor(client, engine, target, constant, days)
        engine.dispose()


def in_process() -> None:
    from wind_pipeline.etl.calendar import day_start
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import create_engine
    from wind_pipeline.etl.extract import extract
    from wind_pipeline.etl.pipeline import run_range, select
    from wind_pipeline.etl.transform import transform

    with stack(days=366, targets=("daily", "yearly")) as (api, _source, daily, yearly):
        daily_engine, yearly_engine = create_engine(daily), create_engine(yearly)
        days = iter(DAY + timedelta(days=i) for i in range(366))
        with ConnectorClient(api) as client, serve_constant() as constant:
            day_against_floor(client, daily_engine, daily, constant, days)

            def year() -> None:
                run_range(client, yearly_engine, DAY, YEAR_LAST)

            first_year = median_seconds(year, 1, warmup=0)  # into an empty target
            reload_year = median_seconds(year, YEAR_RUNS, warmup=0)  # replacing every row

            limits = select(client).limits
            qc = {}
            for label, last in (("day", DAY), ("year", YEAR_LAST)):
                start, end = day_start(DAY), day_start(last + timedelta(days=1))
                raw = extract(client, start, end, list(limits))
                runs = DAY_RUNS if label == "day" else 5
                qc[label] = [
                    median_seconds(
                        lambda on=on, s=start, e=end, r=raw: transform(
                            r, s, e, turbines=("WTG01",), variables=limits, qc=on
                        ),
                        runs,
                    )
                    for on in (True, False)
                ]
        daily_engine.dispose()
        yearly_engine.dispose()
    print(f"ETL one year (366 days) in one call, first load: {first_year:.2f} s")
    print(f"  re-load replacing the year's rows, median of {YEAR_RUNS}: {reload_year:.2f} s")
    for label, (on, off) in qc.items():
        unit, scale = ("ms", 1e3) if label == "day" else ("s", 1)
        print(
            f"transform of a {label}: QC on {on * scale:.2f} {unit}, QC off {off * scale:.2f} "
            f"{unit}: {on / off:.2f}x (target <= 1.5x)"
        )


def fleets() -> None:
    wind_etl = str(Path(sys.executable).with_name("wind-etl"))
    print(f"wind-etl {DAY} process per fleet size, median of {FLEET_RUNS}:")
    print("  turbines | seconds | per turbine-day | rows written")
    for turbines in FLEETS:
        with stack(days=1, turbines=turbines) as (api, _source, target):
            command = [wind_etl, DAY.isoformat(), "--api-url", api, "--database-url", target]
            subprocess.run(command, check=True, capture_output=True)  # schema, warm caches
            times, out = [], ""
            for _ in range(FLEET_RUNS):
                began = time.perf_counter()
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                times.append(time.perf_counter() - began)
            seconds = statistics.median(times)
            written = out.split("wrote ")[1].split(" ")[0]
            print(f"  {turbines:>8} | {seconds:7.3f} | {seconds / turbines:15.4f} | {written}")


if __name__ == "__main__":
    if sys.argv[1:] == ["day"]:
        day_only()
    else:
        in_process()
        fleets()
