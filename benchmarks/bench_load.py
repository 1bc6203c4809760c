"""Load throughput: target rows per second of ``load`` against a bare COPY of the same rows.

Same run, same server, same keyed ``data`` table (primary key, foreign key to ``signal``): the
floor is PostgreSQL ingesting the already-encoded rows with nothing else around them. Also
measured: the library way the load had before (pyarrow's CSV writer into a CSV COPY) against its
binary COPY encoder, two days loaded at once on two connections, and the enforced foreign key of
the previous schema.
Run: ``.venv/bin/python benchmarks/bench_load.py``.
"""

from __future__ import annotations

import io
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: the tests' helpers
from wind_pipeline_tests import loads

TURBINES = 50
DAYS = 4  # 50 turbines x 4 days x 144 windows x 2 variables x 6 statistics ~ 345k rows
RUNS = 5
FIRST = date(2024, 1, 1)


def fleet_stats():
    from wind_pipeline.etl import arrays
    from wind_pipeline.etl.catalogue import Variable
    from wind_pipeline.etl.transform import transform

    names = [f"WTG{i:02d}" for i in range(1, TURBINES + 1)]
    minutes = 1440 * DAYS
    start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
    micros = np.arange(minutes, dtype=np.int64) * 60_000_000 + int(start.timestamp()) * 10**6
    rng = np.random.default_rng(7)
    raw = pa.table(
        {
            "turbine_id": arrays.strings(names, np.repeat(np.arange(TURBINES), minutes)),
            "timestamp": arrays.timestamps(np.tile(micros, TURBINES)),
            "wind_speed": arrays.from_numpy(rng.uniform(0, 25, TURBINES * minutes)),
            "power": arrays.from_numpy(rng.uniform(0, 3000, TURBINES * minutes)),
        }
    )
    limits = {
        "wind_speed": Variable("wind_speed", "m/s", None, 0.0, 40.0, 10.0),
        "power": Variable("power", "kW", None, 0.0, 3000.0, 1500.0),
    }
    stats = transform(
        raw, start, start + timedelta(days=DAYS), turbines=names, variables=limits
    ).stats
    return stats, limits


def interleaved(rows: int, series: dict, rounds: int = RUNS) -> list[float]:
    """Median seconds of each series, run round-robin so that the machine's drift hits all."""
    seconds: dict[str, list[float]] = {label: [] for label in series}
    for _ in range(rounds):
        for label, work in series.items():
            seconds[label].append(_seconds(work))
    medians = []
    for label, values in seconds.items():
        best = statistics.median(values)
        print(f"  {label:<62} {best:7.3f} s  {rows / best:>9,.0f} rows/s")
        medians.append(best)
    return medians


# The library way the load used before its binary encoder: pyarrow's CSV writer, a CSV COPY.
CSV_COPY = "COPY data (timestamp, signal_id, value) FROM STDIN WITH (FORMAT csv)"


def csv_payload(micros, signal, values) -> bytes:
    """Naive whole seconds, read as UTC by the session's TimeZone (set where it is sent)."""
    import pyarrow.csv as csv

    table = pa.table(
        {
            "timestamp": pa.array(micros // 1_000_000).view(pa.timestamp("s")),
            "signal_id": pa.array(signal),
            "value": pa.array(values),
        }
    )
    sink = pa.BufferOutputStream()
    csv.write_csv(table, sink, csv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes()


def main() -> None:
    from wind_pipeline import local_postgres
    from wind_pipeline.etl import load as load_module
    from wind_pipeline.etl.calendar import split_by_day
    from wind_pipeline.etl.db import DirectDatabase, create_engine
    from wind_pipeline.etl.schema import upgrade_schema

    stats, limits = fleet_stats()
    folder = tempfile.mkdtemp(prefix="wbload")
    server = local_postgres.start_server(f"{folder}/pg", delete_on_exit=True)
    try:
        url = local_postgres.create_database(server, "target")
        engine = create_engine(url)
        upgrade_schema(engine)
        engine.dispose()
        target = DirectDatabase(url)
        rows = sum(loads.load(target, stats, limits).values())  # signals exist from here
        print(f"{rows:,} target rows: {TURBINES} turbines x {DAYS} days, one run, same table")

        conn = target.raw_connection()
        melted = _melted(load_module, conn, stats)
        csv_rows = csv_payload(*melted)
        binary = load_module.binary_rows(*melted)

        def sql(statement: str) -> None:
            with conn.cursor() as cur:
                cur.execute(statement)
            conn.commit()

        def bare_copy(statement: str, payload: bytes):
            def run():
                with conn.cursor() as cur:
                    cur.execute("SET TimeZone = 'UTC'; TRUNCATE data")
                    cur.copy_expert(statement, io.BytesIO(payload))
                conn.commit()

            return run

        def load(fresh: bool, encode=None):
            def run():
                if fresh:
                    sql("TRUNCATE data")
                if encode is None:
                    loads.load(target, stats, limits)
                    return
                real = load_module._copy

                def csv_copy(cur, rows, signal_ids):
                    cur.execute("SET LOCAL TimeZone = 'UTC'")
                    payload = csv_payload(rows.micros, signal_ids[rows.key], rows.values)
                    cur.copy_expert(CSV_COPY, io.BytesIO(payload))
                    return len(rows)

                load_module._copy = csv_copy
                try:
                    loads.load(target, stats, limits)
                finally:
                    load_module._copy = real

            return run

        days = list(split_by_day(stats))

        def two_at_once():  # replacing, like the "replacing" series it is compared with
            pending = iter(days)
            lock = threading.Lock()

            def work():
                while True:
                    with lock:
                        item = next(pending, None)
                    if item is None:
                        return
                    loads.load(target, item[1], limits)

            threads = [threading.Thread(target=work) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        print("schema at head (foreign key declared, NOT ENFORCED), rounds interleaved:")
        head = interleaved(
            rows,
            {
                "floor: bare COPY FROM STDIN of the encoded rows (binary)": bare_copy(
                    load_module.COPY_SQL, binary
                ),
                "bare COPY FROM STDIN of the rows as CSV": bare_copy(CSV_COPY, csv_rows),
                "load() into an empty table (lock, signals, delete, COPY)": load(True),
                "load() replacing the same rows": load(False),
                "load() replacing, pyarrow CSV instead of binary": load(False, "csv"),
                "load() replacing, two days at once on two connections": two_at_once,
            },
        )
        floor, floor_csv, fresh, replace, csv_replace, parallel = head
        encode_csv = statistics.median(_seconds(lambda: csv_payload(*melted)) for _ in range(RUNS))
        encode_binary = statistics.median(
            _seconds(lambda: load_module.binary_rows(*melted)) for _ in range(RUNS)
        )
        print(f"  encoding alone: CSV {encode_csv:.3f} s, binary {encode_binary:.3f} s")

        sql("ALTER TABLE data ALTER CONSTRAINT data_signal_id_fkey ENFORCED")
        print("the previous schema (foreign key enforced), rounds interleaved:")
        floor_fk, replace_fk, parallel_fk = interleaved(
            rows,
            {
                "bare COPY FROM STDIN of the encoded rows (binary)": bare_copy(
                    load_module.COPY_SQL, binary
                ),
                "load() replacing the same rows": load(False),
                "load() replacing, two days at once on two connections": two_at_once,
            },
        )
        sql("ALTER TABLE data ALTER CONSTRAINT data_signal_id_fkey NOT ENFORCED")
        conn.close()

        print("summary:")
        print(
            f"  load: {rows / fresh:,.0f} rows/s into an empty table, {rows / replace:,.0f} "
            f"replacing (target >= 250,000); {fresh / floor:.2f}x / {replace / floor:.2f}x "
            "the bare COPY"
        )
        print(
            f"  binary encoder over pyarrow's CSV: load {csv_replace / replace:.2f}x, bare COPY "
            f"{floor_csv / floor:.2f}x"
        )
        print(f"  two connections over one: {replace / parallel:.2f}x (kept only if >= 2x)")
        print(
            f"  enforced foreign key: {(floor_fk - floor) / rows * 1e6:.1f} us/row in a bare "
            f"COPY, {(replace_fk - replace) / rows * 1e6:.1f} us/row in load(); with it "
            f"load does {rows / replace_fk:,.0f} rows/s, {rows / parallel_fk:,.0f} on two "
            "connections"
        )
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def _seconds(work) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def _melted(load_module, conn, stats):
    """The (window, signal id, value) rows ``load`` writes, with the real signal ids."""
    from wind_pipeline.etl.arrays import names
    from wind_pipeline.etl.signal_rows import melt

    with conn.cursor() as cur:
        cur.execute("SELECT turbine, variable, statistic, id FROM signal")
        ids = {(t, v, s): i for t, v, s, i in cur.fetchall()}
    rows = melt(stats, names(stats.column("turbine_id")), names(stats.column("variable")))
    lookup = np.array([ids[key] for key in rows.keys], dtype=np.int32)
    return rows.micros, lookup[rows.key], rows.values


if __name__ == "__main__":
    main()
