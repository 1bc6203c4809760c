"""Write ten-minute statistics into the target: one transaction per UTC day, replace not append.

Per day (``load_day``, told the day and the turbines it replaces): transaction-scoped advisory
locks on exactly those (day, turbine)s (taken in sorted order, so two loads never deadlock), delete
the day's rows of exactly their signals, insert the signal rows still missing, COPY the new rows —
two round trips before the COPY. Loading WTG02 never touches WTG01's rows; a failure rolls the day
back to its previous rows. Hooks (``within``, ``before_copy``) let another module add its own SQL
to that transaction.
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import db, months
from wind_pipeline.etl.calendar import day_range
from wind_pipeline.etl.catalogue import Variable
from wind_pipeline.etl.signal_rows import SignalRows, melt
from wind_pipeline.etl.signals import signal_description, signal_name, signal_unit

SignalKey = tuple[str, str, str]  # (turbine, variable, statistic)
# Days a Dagster range loads at once, each in its own transaction on its own connection: a COPY
# keeps one PostgreSQL backend busy on one core, so two use the two cores of this machine kind
# (measured: 30 days of 50 turbines, 1.3-1.5x the rows/s of one COPY at a time; three no faster
# than two). ``wind-etl`` loads one at a time: after Ctrl-C exactly the days it printed are loaded.
DAYS_AT_ONCE = 2
# Work another module adds to a day's transaction: called with the open transaction's DBAPI
# cursor, committed or rolled back with the day's rows.
InTransaction = Callable[[Any], None]


def load_day(
    target: db.RawConnectionSource | Any,
    day: date,
    stats: pa.Table,
    *,
    turbines: Sequence[str],
    variables: Mapping[str, Variable],
    within: InTransaction | None = None,
    before_copy: InTransaction | None = None,
) -> int:
    """Replace ``day``'s rows of ``turbines`` x ``variables`` by ``stats``; rows written.

    Told its day and the turbines it replaces, the load deletes exactly their rows even when
    ``stats`` is empty (a day with nothing to write still replaces what was there), and never
    touches another turbine's rows. ``variables`` gives each variable's unit for new signal rows.
    ``target`` is a connection source (a connection is taken and given back) or an open DBAPI
    connection. One transaction: on any failure the day keeps its previous rows.

    ``within(cursor)`` runs after the rows are written, before the commit (e.g. the day's
    ``loaded_day`` record); ``before_copy(cursor)`` after the locks and the delete, before the
    COPY (e.g. making sure the day's partition exists). Both share the day's transaction.
    """
    hooks = (before_copy, within)
    if hasattr(target, "raw_connection"):
        conn = db.connect(target)
        try:
            return load_day(
                conn,
                day,
                stats,
                turbines=turbines,
                variables=variables,
                within=within,
                before_copy=before_copy,
            )
        finally:
            with contextlib.suppress(Exception):  # a dropped connection cannot be closed cleanly
                conn.close()
    months.ensure_months(target, day, day)  # its own short transaction, before the day's
    return _load_day(target, day, stats, tuple(turbines), variables, hooks)


def lock_keys(day: date, turbines: Sequence[str]) -> list[tuple[int, int]]:
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
# One round trip opens the day: the locks (sorted), the delete of exactly these signals' rows of
# the day (found by signal ids and time, both in the primary key's index condition, whatever the
# month's statistics say: docs/pitfalls.md § PostgreSQL), and the ids of those that exist already.
_OPEN_DAY = [
    "DELETE FROM data WHERE signal_id = ANY(ARRAY(SELECT s.id FROM signal s JOIN " + _KEYS + "))"
    " AND timestamp >= %s AND timestamp < %s",
    "SELECT s.turbine, s.variable, s.statistic, s.id FROM signal s JOIN " + _KEYS,
]
_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"


def _load_day(
    conn: Any,
    day: date,
    stats: pa.Table,
    turbines: tuple[str, ...],
    variables: Mapping[str, Variable],
    hooks: tuple[InTransaction | None, InTransaction | None],
) -> int:
    """One day in one transaction; rolled back whole on any failure."""
    before_copy, within = hooks
    rows = melt(stats, turbines, tuple(variables))
    keys = [list(column) for column in zip(*rows.keys, strict=True)] or [[], [], []]
    locks = lock_keys(day, turbines)
    statements = [*[_LOCK] * len(locks), *_OPEN_DAY]
    with db.database_errors(f"loading {day.isoformat()}"):
        try:
            with conn.cursor() as cur:
                cur.execute(
                    ";".join(statements),
                    [*(k for pair in locks for k in pair), *keys, *day_range(day), *keys],
                )
                ids = {(t, v, s): i for t, v, s, i in cur.fetchall()}
                if before_copy is not None:
                    before_copy(cur)
                written = 0
                if len(rows):
                    _insert_missing_signals(cur, rows.keys, variables, ids)
                    # (turbine, variable, statistic) key index → signal id, as a lookup table.
                    lookup = np.array([ids[key] for key in rows.keys], dtype=np.int32)
                    written = _copy(cur, rows, lookup)
                if within is not None:
                    within(cur)
            conn.commit()
            return written
        except BaseException:
            with contextlib.suppress(Exception):  # a dead connection cannot roll back; it is gone
                conn.rollback()
            raise


def _insert_missing_signals(
    cur: Any, wanted: list[SignalKey], variables: Mapping[str, Variable], ids: dict
) -> None:
    """Insert the signal rows of ``wanted`` not in ``ids`` yet, and add their ids."""
    new = [key for key in wanted if key not in ids]
    if not new:
        return
    rows = [_signal_row(key, variables.get(key[1])) for key in new]
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


def _signal_row(key: SignalKey, variable: Variable | None) -> tuple[str | None, ...]:
    """A new signal's row: its unit and description from the catalogue's ``Variable``."""
    if variable is None:
        return (signal_name(*key), *key, None, signal_description(*key))
    meaning = variable.description if variable.sources else None  # a derived variable's
    return (
        signal_name(*key),
        *key,
        signal_unit(key[2], variable.unit),
        signal_description(*key, circular=variable.circular, meaning=meaning),
    )


def _copy(cur: Any, rows: SignalRows, signal_ids: np.ndarray) -> int:
    payload = binary_rows(rows.micros, signal_ids[rows.key], rows.values)
    cur.copy_expert(COPY_SQL, io.BytesIO(payload))
    return len(rows)


# PostgreSQL's binary COPY format: a header, then per row the field count and each field as its
# length and its big-endian value (timestamptz: microseconds since 2000-01-01 UTC), then -1.
# Against pyarrow's CSV (the library way, which this replaced for the second time): encoding
# 3.8x cheaper, and PostgreSQL parses no text, 1.05-1.42x the load's throughput over 345k rows
# (benchmarks/bench_load.py) and 1.2-1.35x for a 50 x 30 range's 2.6 M rows; it is part of what
# brought the 50-turbine year through Dagster from 3.1x to 2.1x its COPY floor (README "Measured
# performance"). A value is never NULL: melt drops undefined statistics, so every row has the
# same 34 bytes.
COPY_SQL = "COPY data (timestamp, signal_id, value) FROM STDIN WITH (FORMAT binary)"
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_ROW = np.dtype(
    [("fields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8"), ("id_len", ">i4"), ("id", ">i4"),
     ("value_len", ">i4"), ("value", ">f8")]
)  # fmt: skip


def binary_rows(micros: np.ndarray, signal: np.ndarray, values: np.ndarray) -> bytes:
    """``(timestamp µs UTC, signal id, value)`` rows as one binary COPY payload."""
    rows = np.empty(len(micros), dtype=_ROW)
    rows["fields"], rows["ts_len"], rows["id_len"], rows["value_len"] = 3, 8, 4, 8
    rows["ts"], rows["id"], rows["value"] = micros - _PG_EPOCH_US, signal, values
    return _HEADER + rows.tobytes() + _TRAILER
