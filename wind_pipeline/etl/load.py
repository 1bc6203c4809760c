"""Write ten-minute statistics into the target: one transaction per UTC day, replace not append.

Per day: a transaction-scoped advisory lock keyed on the day (concurrent loads of a day queue up),
insert-or-ignore the signal rows, delete the day's rows of those signals, binary COPY the new
rows. A failure rolls the day back to its previous rows.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from wind_pipeline.etl import db
from wind_pipeline.etl.signals import (
    STATISTICS,
    signal_description,
    signal_name,
    signal_unit,
)
from wind_pipeline.etl.transform import DAY_US, StatsColumns, stats_from_frame

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

# First key of pg_advisory_xact_lock(int, int): "WIND" in ASCII, so our locks are recognisable
# in pg_locks; the second key is the day's proleptic ordinal.
LOCK_NAMESPACE = 0x57494E44
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # signature, flags, header extension
_COPY_TRAILER = b"\xff\xff"
_COPY_ROW = np.dtype(
    [("fields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8"), ("id_len", ">i4"), ("id", ">i4"),
     ("value_len", ">i4"), ("value", ">f8")]
)  # fmt: skip
_COPY_SQL = "COPY data (timestamp, signal_id, value) FROM STDIN WITH (FORMAT binary)"
# Days loaded at once, each on its own connection: PostgreSQL's per-row work (foreign key check,
# primary key) is the bottleneck, and two backends use both cores (a year: about 0.7x the time).
LOAD_WORKERS = 2
# The minimum count that makes a statistic defined (SPEC §4.1).
MIN_COUNT = {"count": 0, "mean": 1, "min": 1, "max": 1, "std": 2}


def load(engine: sa.Engine | db.RawConnectionSource, stats: pd.DataFrame) -> int:
    """Replace the target's rows for every UTC day ``stats`` covers; return rows written."""
    return sum(load_days(engine, stats_from_frame(stats)).values())


def load_days(
    source: db.RawConnectionSource,
    stats: StatsColumns,
    on_day: Callable[[date, int], None] | None = None,
    workers: int = LOAD_WORKERS,
) -> dict[date, int]:
    """Load day by day, each its own transaction, ``workers`` days at a time; rows per day.

    ``on_day`` is called as each day commits (from one thread at a time). On a failure the
    days already committed stay, the failing day keeps its previous rows, no new day starts.
    """
    parts = list(_split_days(stats))
    pending = iter(parts)
    lock = threading.Lock()
    written: dict[date, int] = {}
    failed = threading.Event()

    def work() -> None:
        try:
            conn = db.connect(source)
            try:
                while not failed.is_set():
                    with lock:
                        item = next(pending, None)
                    if item is None:
                        return
                    rows = _load_day(conn, *item)
                    with lock:
                        written[item[0]] = rows
                        if on_day is not None:
                            on_day(item[0], rows)
            finally:
                conn.close()
        except BaseException:
            failed.set()  # the other workers stop after their current day
            raise

    workers = max(1, min(workers, len(parts)))
    if workers == 1:
        work()
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="load")
        futures = [pool.submit(work) for _ in range(workers)]
        try:
            for future in futures:
                future.result()  # the first failure, re-raised here
        except BaseException:  # Ctrl-C too: finish the days in flight, start no other
            failed.set()
            raise
        finally:
            pool.shutdown(wait=True)
    return dict(sorted(written.items()))


def _split_days(stats: StatsColumns) -> Iterator[tuple[date, StatsColumns]]:
    days = stats.timestamps_us // DAY_US
    order = np.argsort(days, kind="stable")
    bounds = np.flatnonzero(np.diff(days[order])) + 1
    for part in np.split(order, bounds) if len(order) else []:
        day = date(1970, 1, 1) + timedelta(days=int(days[part[0]]))
        yield day, _take(stats, part)


def _take(stats: StatsColumns, rows: np.ndarray) -> StatsColumns:
    return StatsColumns(
        timestamps_us=stats.timestamps_us[rows],
        variables=stats.variables,
        var_index=stats.var_index[rows],
        count=stats.count[rows],
        mean=stats.mean[rows],
        min=stats.min[rows],
        max=stats.max[rows],
        std=stats.std[rows],
    )


def _load_day(conn, day: date, stats: StatsColumns) -> int:
    """One day in one transaction; rolled back whole on any failure."""
    with db.database_errors(f"loading {day.isoformat()}"):
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, day.toordinal())
                )
                ids = _ensure_signals(cur, stats.variables)
                _delete_day(cur, day, list(ids.values()))
                payload, rows = _copy_payload(stats, ids)
                _copy(cur, payload)
            conn.commit()
            return rows
        except Exception:
            with contextlib.suppress(Exception):  # a dead connection cannot roll back; it is gone
                conn.rollback()
            raise


def _ensure_signals(cur, variables: tuple[str, ...]) -> dict[tuple[int, str], int]:
    """Signal ids keyed by (variable index, statistic), inserting the missing signals."""
    wanted = [(v, s) for v in variables for s in STATISTICS]
    names = [signal_name(v, s) for v, s in wanted]
    by_name = _signal_ids(cur, names)
    if len(by_name) < len(names):  # only a new variable pays for the insert
        rows = [
            (signal_name(v, s), v, s, signal_unit(v, s), signal_description(v, s))
            for v, s in wanted
        ]
        cur.execute(
            "INSERT INTO signal (name, variable, statistic, unit, description) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "ON CONFLICT DO NOTHING",
            [list(column) for column in zip(*rows, strict=True)],
        )
        by_name = _signal_ids(cur, names)
    position = {v: i for i, v in enumerate(variables)}
    return {(position[v], s): by_name[signal_name(v, s)] for v, s in wanted}


def _signal_ids(cur, names: list[str]) -> dict[str, int]:
    cur.execute("SELECT name, id FROM signal WHERE name = ANY(%s)", (names,))
    return dict(cur.fetchall())


def _delete_day(cur, day: date, signal_ids: list[int]) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    cur.execute(
        "DELETE FROM data WHERE signal_id = ANY(%s) AND timestamp >= %s AND timestamp < %s",
        (signal_ids, start, start + timedelta(days=1)),
    )


def _copy_payload(stats: StatsColumns, ids: dict[tuple[int, str], int]) -> tuple[bytes, int]:
    """The melted rows (one per window and defined statistic) in PostgreSQL's binary COPY format."""
    parts = []
    for statistic in STATISTICS:
        values = getattr(stats, statistic).astype(np.float64)
        keep = (stats.count >= MIN_COUNT[statistic]) & ~np.isnan(values)
        id_of_var = np.array(
            [ids[(i, statistic)] for i in range(len(stats.variables))], dtype=np.int32
        )
        chunk = np.empty(int(keep.sum()), dtype=_COPY_ROW)
        chunk["fields"], chunk["ts_len"], chunk["id_len"], chunk["value_len"] = 3, 8, 4, 8
        chunk["ts"] = stats.timestamps_us[keep] - _PG_EPOCH_US
        chunk["id"] = id_of_var[stats.var_index[keep]]
        chunk["value"] = values[keep]
        parts.append(chunk)
    # Joined as bytes: np.concatenate would convert the big-endian fields to native order.
    body = b"".join(part.tobytes() for part in parts)
    return _COPY_HEADER + body + _COPY_TRAILER, sum(len(part) for part in parts)


def _copy(cur, payload: bytes) -> None:
    cur.copy_expert(_COPY_SQL, io.BytesIO(payload))
