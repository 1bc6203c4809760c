"""Seeding speed: `connector-api seed` against a bare COPY of the same rows, same run.

The floor is the database's own cost: the very rows the seed writes, already formatted as CSV
(on disk, read back from the page cache), COPY'd in one transaction into a fresh ``data`` table
with the same key (turbine_id, timestamp) and foreign key. The seed adds the generation (numpy,
vectorised over the fleet), the CSV formatting and its checks. Sizes up to the README's figure:
50 turbines x 1 year = 26.3 M readings (once, it takes minutes of PostgreSQL).

Run: .venv/bin/python benchmarks/bench_seed.py [--quick]   (starts its own embedded PostgreSQL)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from connector_api import db, generator, schema
from wind_pipeline import local_postgres

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: the tests' helpers
from wind_pipeline_tests.databases import drop_database

START = date(2023, 1, 1)
# (turbines, days, repeats)
SIZES = ((1, 10, 5), (1, 365, 3), (50, 10, 3), (50, 365, 1))
QUICK = ((1, 10, 3), (50, 10, 3))
TARGET = 1.5


def seed_seconds(server, turbines: int, days: int) -> float:
    name = f"b_{uuid.uuid4().hex[:10]}"
    url = local_postgres.create_database(server, name)
    try:
        began = time.perf_counter()
        generator.write(url, *generator.resolve_range(START, days, None), turbines=turbines)
        return time.perf_counter() - began
    finally:
        drop_database(server, name)


def write_payload(path: Path, turbines: int, days: int) -> int:
    """The seed's rows as COPY-ready CSV in one file; the number of rows."""
    first, last = generator.resolve_range(START, days, None)
    rows = 0
    with path.open("wb") as sink:
        for table, _ in generator.generate_blocks(first, last, turbines=turbines, ramp=True):
            sink.write(generator.to_csv(table))
            rows += table.num_rows
    return rows


def bare_copy_seconds(server, path: Path, turbines: int) -> float:
    """The floor: one COPY of the formatted rows into the empty keyed table, in a transaction."""
    name = f"b_{uuid.uuid4().hex[:10]}"
    url = local_postgres.create_database(server, name)
    conn = db.connect(url)
    try:
        with conn, conn.cursor() as cur:
            schema.ensure_schema(cur)
            cur.executemany(
                "INSERT INTO turbine (id) VALUES (%s)", [(t.id,) for t in generator.farm(turbines)]
            )
            cur.execute("SET LOCAL TimeZone = 'UTC'")
            with path.open("rb") as payload:
                began = time.perf_counter()
                cur.copy_expert(generator.COPY_SQL, payload, size=1 << 20)
                return time.perf_counter() - began
    finally:
        conn.close()
        drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (no year)")
    parser.add_argument(
        "--size",
        metavar="TURBINES,DAYS,REPEATS",
        help="one size only, e.g. 1,365,3 (the README's turbine-year)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else SIZES
    if args.size:
        sizes = (tuple(int(part) for part in args.size.split(",")),)
    lines = []
    with tempfile.TemporaryDirectory(prefix="bseed") as folder:
        server = local_postgres.start_server(Path(folder) / "pg", delete_on_exit=True)
        try:
            seed_seconds(server, 1, 1)  # warm imports and the server
            for turbines, days, repeats in sizes:
                payload = Path(folder) / "payload.csv"
                rows = write_payload(payload, turbines, days)
                seeds, floors = [], []
                for _ in range(repeats):  # alternate, so both see the same machine load
                    seeds.append(seed_seconds(server, turbines, days))
                    floors.append(bare_copy_seconds(server, payload, turbines))
                payload.unlink()
                seed, floor = statistics.median(seeds), statistics.median(floors)
                lines.append(
                    f"{turbines:>3} turbine(s) x {days:>3} days = {rows:>10,} readings:"
                    f" seed {seed:8.2f} s ({rows / seed:>9,.0f} rows/s), bare COPY {floor:8.2f} s"
                    f" ({rows / floor:>9,.0f} rows/s), ratio {seed / floor:.2f}"
                    f" (median of {repeats})"
                )
                print(lines[-1], flush=True)
        finally:
            server.cleanup()
    print(f"target: ratio <= {TARGET} for 50 turbines x 1 year (docs/rules.md, Performance)")


if __name__ == "__main__":
    main()
