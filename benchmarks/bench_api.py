"""GET /data over loopback, each figure against a floor measured in the same run (docs/rules.md):

- one day x 2 variables per format against a constant `[]` endpoint in the same server process
  (targets: JSON <= 3x, Arrow <= 2x), and beside them the same day's rows as a bare binary
  `COPY` answered by the same server (no decoding, encoding or validation): the floor plus
  PostgreSQL's own work, which no format can go under;
- one year x 3 variables as Arrow against `COPY (SELECT ...) TO STDOUT` of the same rows
  (target <= 1.5x);
- one day x 10 turbines x 2 variables as Arrow against `COPY (SELECT ...) TO STDOUT` of the same
  rows (target <= 1.5x).

Run: .venv/bin/python benchmarks/bench_api.py [--day]   (its own embedded PostgreSQL and server;
--day: the one-day figures only)
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: the tests' helpers
from wind_pipeline_tests.ports import free_port

REQUESTS = 100
YEAR_RUNS = 5
FLEET_RUNS = 30
FLEET = 10
DAY_PARAMS = {"start": "2023-06-01T00:00:00Z", "end": "2023-06-02T00:00:00Z"}
DAY_VARIABLES = ["wind_speed", "power"]
YEAR_PARAMS = {"start": "2023-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}
FLEET_PARAMS = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}  # 10 turbines
YEAR_COPY = (
    "COPY (SELECT turbine_id, timestamp, wind_speed, power, ambient_temperature FROM data"
    " WHERE timestamp >= '2023-01-01Z' AND timestamp < '2024-01-01Z'"
    " ORDER BY turbine_id, timestamp) TO STDOUT"
)
FLEET_COPY = (
    "COPY (SELECT turbine_id, timestamp, wind_speed, power FROM data"
    " WHERE timestamp >= '2024-01-01Z' AND timestamp < '2024-01-02Z'"
    " ORDER BY turbine_id, timestamp) TO STDOUT"
)


def serve(url: str, port: int) -> None:
    """The benchmark's own app: the product's app plus a floor route (not in the product)."""
    import threading

    import uvicorn
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import Response

    from connector_api import db
    from connector_api.app import create_app
    from connector_api.routes.data import parse_timestamp
    from connector_api.settings import Settings

    app = create_app(Settings(database_url=url))

    @app.get("/floor", include_in_schema=False)
    def floor() -> Response:
        return Response(b"[]", media_type="application/json")

    @app.get("/copy", include_in_schema=False)
    async def copy() -> Response:
        return Response(await run_in_threadpool(copy_day), media_type="application/octet-stream")

    local = threading.local()
    day = [parse_timestamp(name, DAY_PARAMS[name]) for name in ("start", "end")]
    query = f"COPY ({db.data_query(DAY_VARIABLES, None, *day)}) TO STDOUT (FORMAT binary)"

    def copy_day() -> bytes:
        if not hasattr(local, "conn"):  # one session per worker thread, as the pool keeps them
            local.conn = db.connect(url, options="-c enable_sort=off")
            local.conn.autocommit = True
        sink = io.BytesIO()
        with local.conn.cursor() as cur:
            cur.copy_expert(query, sink)
        return sink.getvalue()

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def direct_copy_ms(url: str, query: str, runs: int) -> float:
    """The floor of a range figure: the same rows straight out of PostgreSQL, no HTTP."""
    from connector_api import db

    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            cur.copy_expert(query, io.BytesIO())  # warm the cache as the API's runs are
            times = []
            for _ in range(runs):
                began = time.perf_counter()
                cur.copy_expert(query, io.BytesIO())
                times.append(time.perf_counter() - began)
        return statistics.median(times) * 1000
    finally:
        conn.close()


def vacuum(url: str) -> None:
    """Settle the fresh rows (hint bits, statistics) as a routinely vacuumed database would be."""
    from connector_api import db

    conn = db.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE data")
    finally:
        conn.close()


def main(day_only: bool = False) -> None:
    from connector_api.generator import resolve_range, write
    from wind_pipeline import local_postgres

    with tempfile.TemporaryDirectory(prefix="bapi") as folder:
        server = local_postgres.start_server(Path(folder) / "pg", delete_on_exit=True)
        url = local_postgres.create_database(server, "source")
        write(url, *resolve_range(date(2023, 1, 1), 365, None))
        write(url, *resolve_range(date(2024, 1, 1), 1, None), turbines=FLEET)
        vacuum(url)
        port = free_port()
        api = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)])
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                for _ in range(200):
                    try:
                        client.get("/health")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                run(client, url, day_only)
        finally:
            api.terminate()
            api.wait(timeout=10)
            server.cleanup()


def timed_ms(client: httpx.Client, path: str, params: dict) -> float:
    began = time.perf_counter()
    with client.stream("GET", path, params=params) as response:
        response.raise_for_status()
        for _ in response.iter_raw():
            pass
    return (time.perf_counter() - began) * 1000


def run(client: httpx.Client, url: str, day_only: bool = False) -> None:
    day = {**DAY_PARAMS, "variables": ",".join(DAY_VARIABLES)}
    cases = {"floor": ("/floor", {}), "COPY": ("/copy", {})}
    cases |= {
        name: ("/data", {**day, "format": name}) for name in ("json", "csv", "arrow", "ndjson")
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(REQUESTS + 5):  # interleaved, so load from elsewhere hits all alike
        for name, (path, params) in cases.items():
            ms = timed_ms(client, path, params)
            if round_ >= 5:  # the first rounds warm up every path
                times[name].append(ms)
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor, copy = medians.pop("floor"), medians.pop("COPY")
    print(f"GET /data 1 day x 2 vars, median of {REQUESTS} interleaved requests over loopback")
    print(f"  floor (constant [] from the same server): {floor:.2f} ms")
    print(f"  the day's bare binary COPY from the same server: {copy:.2f} ms, {copy / floor:.2f}x")
    targets = {"json": 3, "arrow": 2}
    for name, ms in medians.items():
        goal = f" (target <= {targets[name]})" if name in targets else ""
        print(f"  {name:6}: {ms:.2f} ms, ratio to floor {ms / floor:.2f}{goal}")
    if day_only:
        return
    year = {**YEAR_PARAMS, "variables": "wind_speed,power,ambient_temperature", "format": "arrow"}
    timed_ms(client, "/data", year)
    arrow = statistics.median(timed_ms(client, "/data", year) for _ in range(YEAR_RUNS))
    copy = direct_copy_ms(url, YEAR_COPY, YEAR_RUNS)
    print(f"GET /data 1 year x 3 vars Arrow, median of {YEAR_RUNS}: {arrow:.0f} ms")
    print(f"  floor, direct COPY (SELECT ...) TO STDOUT: {copy:.0f} ms")
    print(f"  ratio: {arrow / copy:.2f} (target <= 1.5)")
    fleet = {**FLEET_PARAMS, "variables": "wind_speed,power", "format": "arrow"}
    for _ in range(3):
        timed_ms(client, "/data", fleet)
    arrow = statistics.median(timed_ms(client, "/data", fleet) for _ in range(FLEET_RUNS))
    copy = direct_copy_ms(url, FLEET_COPY, FLEET_RUNS)
    print(
        f"GET /data 1 day x {FLEET} turbines x 2 vars Arrow, median of {FLEET_RUNS}: {arrow:.1f} ms"
    )
    print(f"  floor, direct COPY (SELECT ...) TO STDOUT: {copy:.1f} ms")
    print(f"  ratio: {arrow / copy:.2f} (target <= 1.5)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main(day_only=sys.argv[1:2] == ["--day"])
