"""Target PostgreSQL bytes per turbine-year: what sizing and partitioning decisions rest on.

Loads one year of a fleet through ``run_range`` (the same path as ``wind-etl``), then reads
``pg_relation_size`` / ``pg_indexes_size`` of ``data`` and prints bytes per row and per
turbine-year, and the time of a one-day read-back of one signal (what an analyst's query costs)
at that size.

Run: ``.venv/bin/python benchmarks/bench_target_size.py [--turbines N] [--days D]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_etl import stack

FIRST = date(2024, 1, 1)
# Summed over the month partitions of ``data`` (its own sizes are 0 since migration 0005).
SIZE_QUERY = """
SELECT sum(pg_relation_size(relid)), sum(pg_indexes_size(relid)),
       sum(pg_total_relation_size(relid)), (SELECT count(*) FROM data)
FROM pg_partition_tree('data') WHERE isleaf
"""
DAY_QUERY = """
SELECT d.timestamp, d.value FROM data d JOIN signal s ON s.id = d.signal_id
WHERE s.name = %s AND d.timestamp >= %s AND d.timestamp < %s
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turbines", type=int, default=2, help="fleet size (default: 2)")
    parser.add_argument("--days", type=int, default=365, help="days loaded (default: 365)")
    args = parser.parse_args()

    import psycopg2

    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import create_engine
    from wind_pipeline.etl.pipeline import run_range

    last = FIRST + timedelta(days=args.days - 1)
    with stack(args.days, turbines=args.turbines) as (api_url, _source, target_url):
        engine = create_engine(target_url)
        began = time.perf_counter()
        with ConnectorClient(api_url) as client:
            run_range(client, engine, FIRST, last)
        load_s = time.perf_counter() - began
        engine.dispose()
        conn = psycopg2.connect(target_url.replace("postgresql+psycopg2", "postgresql"))
        with conn, conn.cursor() as cur:
            cur.execute(SIZE_QUERY)
            table, indexes, total, rows = cur.fetchone()
            day = FIRST + timedelta(days=args.days // 2)
            times = []
            for _ in range(20):
                t = time.perf_counter()
                cur.execute(DAY_QUERY, ("WTG01.wind_speed_mean", day, day + timedelta(days=1)))
                assert 0 < len(cur.fetchall()) <= 144  # a window without valid readings has no mean
                times.append(time.perf_counter() - t)
        conn.close()
    turbine_years = args.turbines * args.days / 365
    print(f"loaded {args.turbines} turbines x {args.days} days: {rows:,} rows in {load_s:.1f} s")
    print(f"  data heap     {table / 2**20:8.1f} MiB  {table / rows:5.1f} B/row")
    print(f"  data indexes  {indexes / 2**20:8.1f} MiB  {indexes / rows:5.1f} B/row")
    print(f"  data total    {total / 2**20:8.1f} MiB  {total / rows:5.1f} B/row")
    per_year = total / turbine_years / 2**20
    print(f"  per turbine-year: {rows / turbine_years:,.0f} rows, {per_year:.1f} MiB")
    print(f"  one signal, one day read back: median {statistics.median(times) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
