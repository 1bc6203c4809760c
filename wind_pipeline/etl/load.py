"""Write ten-minute statistics into the target: one transaction per UTC day, replace not append.

Per day: transaction-scoped advisory locks on exactly the (day, turbine)s being written (taken in
sorted order, so two loads never deadlock), delete the day's rows of exactly those signals, insert
the signal rows still missing, COPY the new rows — two round trips before the COPY. Loading WTG02
never touches WTG01's rows; a failure rolls the day back to its previous rows.
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import arrays, db, months
from wind_pipeline.etl.calendar import day_range, split_by_day
from wind_pipeline.etl.catalogue import Variable
from wind_pipeline.etl.signals import (
    MIN_COUNT,
    STATISTICS,
    signal_description,
    signal_name,
    signal_unit,
)

SignalKey = tuple[str, str, str]  # (turbine, variable, statistic)


def load(
    target: db.RawConnectionSource, stats: pa.Table, variables: Mapping[str, Variable]
) -> dict[date, int]:
    """Replace, day by day, the target's rows of the (day, turbine, variable)s in ``stats``.

    ``stats`` is a STATS table (``transform``); ``variables`` gives each variable's unit for new
    signal rows. Returns the rows written per day, in day order. Days already committed stay
    when a later day fails.
    """
    written: dict[date, int] = {}
    conn = db.connect(target)
    try:
        for day, part in split_by_day(stats):
            months.ensure_months(conn, day, day)  # its own short transaction, before the day's
            written[day] = _load_day(conn, day, part, variables)
    finally:
        with contextlib.suppress(Exception):  # a dropped connection cannot be closed cleanly
            conn.close()
    return written


def lock_keys(day: date, turbines: list[str]) -> list[tuple[int, int]]:
    """``pg_advisory_xact_lock(int, int)`` keys of (day, turbine): (day ordinal, CRC-32 of id).

    A CRC collision only makes two turbines' loads of a day queue, never mix.
    """
    unsigned = {zlib.crc32(turbine.encode()) for turbine in turbines}
    signed = sorted(key - (1 << 32) if key >= 1 << 31 else key for key in unsigned)
    return [(day.toordinal(), key) for key in signed]


# The signals of the day's (turbine, variable, statistic) keys, given as three parallel arrays.
_KEYS = (
    "unnest(%s::text[], %s::text[], %s::text[]) AS k(turbine, variable, statistic) "
    "USING (turbine, variable, statistic)"
)
# One round trip opens the day: UTC for the CSV's naive timestamps, the locks (sorted), the
# delete of exactly these signals' rows of the day, and the ids of those that exist already.
_OPEN_DAY = [
    "SET LOCAL TimeZone = 'UTC'",
    "DELETE FROM data d USING signal s JOIN " + _KEYS + " "
    "WHERE d.signal_id = s.id AND d.timestamp >= %s AND d.timestamp < %s",
    "SELECT s.turbine, s.variable, s.statistic, s.id FROM signal s JOIN " + _KEYS,
]
_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"


def _load_day(conn: Any, day: date, stats: pa.Table, variables: Mapping[str, Variable]) -> int:
    """One day in one transaction; rolled back whole on any failure."""
    turbine_ids = _dictionary(stats.column("turbine_id"))
    variable_ids = _dictionary(stats.column("variable"))
    turbines = [str(t) for t in turbine_ids.dictionary.to_pylist()]
    names = [str(v) for v in variable_ids.dictionary.to_pylist()]
    wanted = [(t, v, s) for t in turbines for v in names for s in STATISTICS]
    keys = [list(column) for column in zip(*wanted, strict=True)]
    locks = lock_keys(day, turbines)
    statements = [_OPEN_DAY[0], *[_LOCK] * len(locks), *_OPEN_DAY[1:]]
    with db.database_errors(f"loading {day.isoformat()}"):
        try:
            with conn.cursor() as cur:
                cur.execute(
                    ";".join(statements),
                    [*(k for pair in locks for k in pair), *keys, *day_range(day), *keys],
                )
                ids = {(t, v, s): i for t, v, s, i in cur.fetchall()}
                _insert_missing_signals(cur, wanted, variables, ids)
                # (turbine, variable, statistic) index → signal id, as a lookup table.
                lookup = np.array([ids[key] for key in wanted], dtype=np.int32).reshape(
                    len(turbines), len(names), len(STATISTICS)
                )
                turbine = arrays.to_numpy(turbine_ids.indices, np.int64)
                variable = arrays.to_numpy(variable_ids.indices, np.int64)
                rows = _copy(cur, stats, lookup[turbine, variable])
            conn.commit()
            return rows
        except BaseException:
            with contextlib.suppress(Exception):  # a dead connection cannot roll back; it is gone
                conn.rollback()
            raise


def _dictionary(column: pa.ChunkedArray) -> pa.DictionaryArray:
    """The column dictionary-encoded (a table read back from Parquet may already be)."""
    array = column.combine_chunks()
    return array if pa.types.is_dictionary(array.type) else array.dictionary_encode()


def _insert_missing_signals(
    cur: Any, wanted: list[SignalKey], variables: Mapping[str, Variable], ids: dict
) -> None:
    """Insert the signal rows of ``wanted`` not in ``ids`` yet, and add their ids."""
    new = [key for key in wanted if key not in ids]
    if not new:
        return
    rows = [
        (
            signal_name(*key),
            *key,
            signal_unit(key[2], variables[key[1]].unit if key[1] in variables else None),
            signal_description(*key),
        )
        for key in new
    ]
    # Two first loads at once may both insert: the unique keys keep one, the other waits.
    cur.execute(
        "INSERT INTO signal (name, turbine, variable, statistic, unit, description) "
        "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::text[]) ON CONFLICT DO NOTHING",
        [list(column) for column in zip(*rows, strict=True)],
    )
    cur.execute(
        "SELECT s.turbine, s.variable, s.statistic, s.id FROM signal s JOIN " + _KEYS,
        [list(column) for column in zip(*new, strict=True)],
    )
    ids.update({(t, v, s): i for t, v, s, i in cur.fetchall()})


def _melt(stats: pa.Table, signal_of_row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The target rows: (window µs, signal id, value) of every defined statistic."""
    micros = arrays.to_numpy(stats.column("timestamp"), np.int64)
    count = arrays.to_numpy(stats.column("count"), np.int64)
    parts = []
    for index, statistic in enumerate(STATISTICS):
        values = arrays.to_numpy(stats.column(statistic), np.float64)
        keep = (count >= MIN_COUNT[statistic]) & ~np.isnan(values)
        parts.append((micros[keep], signal_of_row[keep, index], values[keep]))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _copy(cur: Any, stats: pa.Table, signal_of_row: np.ndarray) -> int:
    micros, signal, values = _melt(stats, signal_of_row)
    cur.copy_expert(COPY_SQL, io.BytesIO(_csv(micros, signal, values)))
    return len(micros)


def _csv(micros: np.ndarray, signal: np.ndarray, values: np.ndarray) -> bytes:
    import pyarrow.csv as csv

    # Naive whole seconds (window starts always are), read as UTC by the transaction's TimeZone:
    # pyarrow formats a zoned timestamp through the time-zone database, 8x slower per value.
    table = pa.table(
        {
            "timestamp": arrays.from_numpy(micros // 1_000_000).view(pa.timestamp("s")),
            "signal_id": arrays.from_numpy(signal),
            "value": arrays.from_numpy(values),
        }
    )
    sink = pa.BufferOutputStream()
    csv.write_csv(table, sink, csv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes()


# The library way: pyarrow writes CSV, PostgreSQL's COPY reads it. A hand-written binary COPY
# encoder was measured against it (benchmarks/bench_load.py, 345k rows of 50 turbines): 0.98-1.09x
# the load's throughput, far from the 2x that would pay for its code, so it went.
COPY_SQL = "COPY data (timestamp, signal_id, value) FROM STDIN WITH (FORMAT csv)"
