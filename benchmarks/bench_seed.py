"""Seeding speed: 10 days and one year into fresh databases, against a bare COPY of the same year.

Run: .venv/bin/python benchmarks/bench_seed.py   (starts its own embedded PostgreSQL)
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from connector_api import db, generator
from wind_pipeline import local_postgres

START = date(2023, 1, 1)
RUNS_10_DAYS, RUNS_YEAR = 7, 3


def fresh(server) -> str:
    return local_postgres.create_database(server, f"b_{uuid.uuid4().hex[:10]}")


def seed_seconds(server, days: int) -> float:
    url = fresh(server)
    began = time.perf_counter()
    generator.seed(url, start=START, days=days)
    return time.perf_counter() - began


def bare_copy_seconds(server, payload: bytes) -> float:
    """The floor: COPY of already formatted rows into the empty table (with its primary key)."""
    conn = db.connect(fresh(server))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(generator.CREATE_TABLE)
            cur.execute("SET LOCAL TimeZone = 'UTC'")
            began = time.perf_counter()
            cur.copy_expert(
                'COPY data ("timestamp", wind_speed, power, ambient_temperature)'
                " FROM STDIN (FORMAT csv)",
                io.BytesIO(payload),
            )
        return time.perf_counter() - began
    finally:
        conn.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bseed") as folder:
        server = local_postgres.start_server(Path(folder) / "pg", delete_on_exit=True)
        try:
            seed_seconds(server, 1)  # warm imports and the server
            ten_days = statistics.median(seed_seconds(server, 10) for _ in range(RUNS_10_DAYS))
            year = statistics.median(seed_seconds(server, 365) for _ in range(RUNS_YEAR))
            first, last = generator.resolve_range(START, 365, None)
            payload = generator.to_csv(generator.generate(first, last))
            floor = statistics.median(bare_copy_seconds(server, payload) for _ in range(RUNS_YEAR))
        finally:
            server.cleanup()
    print(f"seed 10 days: median {ten_days:.3f} s over {RUNS_10_DAYS} runs (target <= 0.15 s)")
    print(f"seed 1 year:  median {year:.3f} s over {RUNS_YEAR} runs (target <= 4 s)")
    print(f"floor, bare COPY of the year's formatted rows: median {floor:.3f} s")
    print(f"ratio 1 year / floor: {year / floor:.2f}")


if __name__ == "__main__":
    main()
