"""GET /days and what its triggers cost, each figure against a floor measured in the same run.

1. Seeding 10 turbines x 30 days with the per-day version triggers against the same seed with
   them disabled (``ALTER TABLE data DISABLE TRIGGER``), alternated: the write cost of versions.
2. GET /days over loopback for 50 turbines x 30 days (the seeded rows) and x 365 days, against
   two floors: a constant ``[]`` endpoint of the same server, and a direct ``SELECT`` of the same
   summary rows (psycopg2, no HTTP). The 30-day request is timed before and after ten years of
   history are added to the summary, to show its cost does not grow with the history.
3. The alternative left aside: a digest of the rows computed per request (count, first, last and
   an md5 of the rows per day and turbine) over the 30 seeded days, read straight from SQL.

The days beyond the seeded 30 are summary rows written directly (the route reads nothing else):
seeding 50 turbines x 10 years of readings would take the better part of an hour here.

Run: .venv/bin/python benchmarks/bench_days.py [--quick]   (starts its own PostgreSQL and API)
     .venv/bin/python benchmarks/bench_days.py --seed-year   (the seed figure at 50 x 365 only)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx

from connector_api import db, generator, schema, versions
from wind_pipeline import local_postgres

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: the tests' helpers
from wind_pipeline_tests.databases import drop_database

START = date(2024, 1, 1)
FLEET, DAYS = 50, 30
SEED_FLEET, SEED_DAYS = 10, 30
HISTORY_DAYS = 3650  # ten years of summary rows ending where the seeded month starts

DIGEST = f"""
SELECT ("timestamp" AT TIME ZONE 'UTC')::date AS day, turbine_id, count(*), min("timestamp"),
       max("timestamp"), md5(string_agg(d::text, ',' ORDER BY "timestamp"))
FROM data d
WHERE "timestamp" >= '{START}' AND "timestamp" < '{START + timedelta(days=DAYS)}'
GROUP BY 1, 2 ORDER BY 1, 2
"""


def serve(url: str, port: int) -> None:
    """The product's app plus a floor route (not in the product)."""
    import uvicorn
    from fastapi.responses import Response

    from connector_api.app import create_app
    from connector_api.settings import Settings

    app = create_app(Settings(database_url=url))

    @app.get("/floor", include_in_schema=False)
    def floor() -> Response:
        return Response(b"[]", media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def execute(url: str, statement: str, *, fetch: bool = False) -> list[tuple]:
    conn = db.connect(url, options="-c TimeZone=UTC")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if fetch else []
    finally:
        conn.close()


def seed_seconds(
    server, *, triggers: bool, fleet: int = SEED_FLEET, days: int = SEED_DAYS
) -> float:
    """One seed of ``fleet`` x ``days`` into a fresh database, triggers on or disabled."""
    name = f"b_{uuid.uuid4().hex[:10]}"
    url = local_postgres.create_database(server, name)
    try:
        conn = db.connect(url)
        try:
            with conn, conn.cursor() as cur:
                schema.ensure_schema(cur)
                if not triggers:
                    for trigger in versions.TRIGGERS.values():
                        cur.execute(f"ALTER TABLE data DISABLE TRIGGER {trigger}")
        finally:
            conn.close()
        began = time.perf_counter()
        generator.write(url, *generator.resolve_range(START, days, None), turbines=fleet)
        return time.perf_counter() - began
    finally:
        drop_database(server, name)


def seed_ratio(server, repeats: int, fleet: int = SEED_FLEET, days: int = SEED_DAYS) -> None:
    seed_seconds(server, triggers=True, days=1)  # warm imports and the server
    on, off = [], []
    for _ in range(repeats):  # alternated, so both see the same machine load
        on.append(seed_seconds(server, triggers=True, fleet=fleet, days=days))
        off.append(seed_seconds(server, triggers=False, fleet=fleet, days=days))
    with_, without = statistics.median(on), statistics.median(off)
    print(
        f"seed {fleet} turbines x {days} days, median of {repeats}:"
        f" with triggers {with_:.2f} s, without {without:.2f} s, ratio {with_ / without:.2f}",
        flush=True,
    )


def add_history(url: str) -> None:
    """Ten years of (day, turbine) summary rows before the seeded month, as triggers write them."""
    first = START - timedelta(days=HISTORY_DAYS)
    execute(
        url,
        f"INSERT INTO {versions.SUMMARY_TABLE} SELECT d::date, t.id, 1440, d,"
        f" d + interval '1439 minutes', nextval('{versions.SEQUENCE}')"
        f" FROM generate_series('{first}'::timestamptz, '{START - timedelta(days=1)}',"
        " interval '1 day') AS d, turbine AS t",
    )
    # and the rest of the seeded year, so that 365 days asked are 365 days served
    last = START + timedelta(days=365)
    execute(
        url,
        f"INSERT INTO {versions.SUMMARY_TABLE} SELECT d::date, t.id, 1440, d,"
        f" d + interval '1439 minutes', nextval('{versions.SEQUENCE}')"
        f" FROM generate_series('{START + timedelta(days=DAYS)}'::timestamptz,"
        f" '{last - timedelta(days=1)}', interval '1 day') AS d, turbine AS t",
    )
    execute(url, f"VACUUM ANALYZE {versions.SUMMARY_TABLE}")


def timed_ms(client: httpx.Client, path: str, params: dict) -> float:
    began = time.perf_counter()
    response = client.get(path, params=params)
    response.raise_for_status()
    return (time.perf_counter() - began) * 1000


def select_ms(url: str, days: int, runs: int) -> float:
    """The floor: the route's own query, straight from PostgreSQL."""
    from connector_api.routes.days import days_query

    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            times = []
            for _ in range(runs + 1):
                began = time.perf_counter()
                cur.execute(days_query(START, START + timedelta(days=days), None))
                cur.fetchall()
                times.append(time.perf_counter() - began)
        return statistics.median(times[1:]) * 1000
    finally:
        conn.close()


def measure(client: httpx.Client, url: str, runs: int, spans: tuple[int, ...]) -> dict:
    cases = {"floor": ("/floor", {})}
    cases |= {
        span: ("/days", {"start": str(START), "end": str(START + timedelta(days=span))})
        for span in spans
    }
    times: dict = {name: [] for name in cases}
    for round_ in range(runs + 2):  # interleaved; the first rounds warm every path
        for name, (path, params) in cases.items():
            ms = timed_ms(client, path, params)
            if round_ >= 2:
                times[name].append(ms)
    medians = {name: statistics.median(values) for name, values in times.items()}
    medians |= {f"select {span}": select_ms(url, span, runs) for span in spans}
    return medians


def report(label: str, medians: dict, spans: tuple[int, ...], runs: int) -> None:
    print(f"GET /days, {FLEET} turbines, {label}, median of {runs} interleaved requests")
    print(f"  floor (constant [] from the same server): {medians['floor']:.2f} ms")
    for span in spans:
        ms, select = medians[span], medians[f"select {span}"]
        print(
            f"  {span:>3} days ({span * FLEET:>6,} rows): {ms:7.2f} ms; direct SELECT"
            f" {select:6.2f} ms; ratio to SELECT {ms / select:.2f}, minus the constant floor"
            f" {(ms - medians['floor']) / select:.2f}"
        )


def digest_ms(url: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        execute(url, DIGEST, fetch=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--seed-year",
        action="store_true",
        help="only the seed figure, for 50 turbines x 365 days, once each way (minutes)",
    )
    parser.add_argument("--no-seed", action="store_true", help="skip the seed figure")
    args = parser.parse_args()
    if args.seed_year:
        with tempfile.TemporaryDirectory(prefix="bdays") as folder:
            server = local_postgres.start_server(Path(folder) / "pg", delete_on_exit=True)
            try:
                seed_ratio(server, 1, fleet=FLEET, days=365)
            finally:
                server.cleanup()
        return
    quick = args.quick
    repeats, runs = (1, 10) if quick else (3, 30)
    with tempfile.TemporaryDirectory(prefix="bdays") as folder:
        server = local_postgres.start_server(Path(folder) / "pg", delete_on_exit=True)
        try:
            if not args.no_seed:
                seed_ratio(server, repeats)
            url = local_postgres.create_database(server, "source")
            began = time.perf_counter()
            generator.write(url, *generator.resolve_range(START, DAYS, None), turbines=FLEET)
            print(f"seeded {FLEET} x {DAYS} days in {time.perf_counter() - began:.1f} s")
            execute(url, "VACUUM ANALYZE")
            port = free_port()
            api = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)])
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                    wait_until_up(client)
                    report("no history", measure(client, url, runs, (DAYS,)), (DAYS,), runs)
                    add_history(url)
                    spans = (DAYS, 365)
                    report("ten years of history", measure(client, url, runs, spans), spans, runs)
            finally:
                api.terminate()
                api.wait(timeout=10)
            print(
                f"digest on demand over {FLEET} x {DAYS} days of rows (SQL alone, median of 3):"
                f" {digest_ms(url, 3):.0f} ms"
            )
        finally:
            server.cleanup()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(client: httpx.Client) -> None:
    for _ in range(400):
        try:
            client.get("/health")
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the API did not start")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
