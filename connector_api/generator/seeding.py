"""``connector-api seed``: write generated readings into the source database in one transaction.

Generated and copied block by block (the next block is made while PostgreSQL digests the
current COPY), so memory stays bounded however long the range and large the fleet.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from connector_api import schema
from connector_api.calendar import midnight
from connector_api.db import connect
from connector_api.generator.farm import Turbine, farm
from connector_api.generator.readings import generate_blocks
from connector_api.generator.tables import COLUMNS, day_blocks, to_csv, write_faults_csv
from connector_api.schema import TABLE, TURBINE_TABLE, ensure_schema
from wind_pipeline.etl.ahead import ahead  # one helper for both: the next item made meanwhile

_COLUMN_LIST = ", ".join(f'"{name}"' for name in COLUMNS)
COPY_SQL = f"COPY {TABLE} ({_COLUMN_LIST}) FROM STDIN (FORMAT csv)"
COPY_CHUNK = 1 << 20  # bytes handed to libpq per call


@dataclass(frozen=True)
class SeedReport:
    """What a seed run wrote: the range (end exclusive, UTC), fleet, rows and time taken."""

    start: datetime
    end: datetime
    turbines: int
    rows_generated: int
    rows_written: int
    seconds: float
    faults_logged: int = 0


def resolve_range(
    start: date | None, days: int, end: date | None, *, today: date | None = None
) -> tuple[datetime, datetime]:
    """The UTC range ``[start, end)`` of whole days; by default the ``days`` days before today."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if start is None:
        start = (end or today or datetime.now(UTC).date()) - timedelta(days=days)
    if end is None:
        end = start + timedelta(days=days)
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    return midnight(start), midnight(end)


def write(
    database_url: str,
    start: datetime,
    end: datetime,
    *,
    seed: int = 42,
    turbines: int = 1,
    faults: bool = False,
    replace: bool = False,
    faults_log=None,
    if_empty: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Generate ``[start, end)`` for the fleet and write it in one transaction.

    Creates (or upgrades) the schema. Insert-or-ignore, or ``replace`` the fleet's rows of the
    range; with ``if_empty`` nothing is written when ``data`` already has a row. ``faults_log``
    (a binary file) receives the ground truth as CSV.
    """
    began = time.perf_counter()
    fleet = farm(turbines)
    conn = connect(database_url)
    generated = written = logged = 0
    header_written = False
    # Small blocks first (the first COPY starts sooner), except when the truth log is written:
    # it is sorted block by block, so the same cut keeps its file in the same order.
    ramp = faults_log is None
    done, blocks = 0, sum(1 for _ in day_blocks(start, end, turbines, ramp=ramp))
    try:
        with conn, conn.cursor() as cur:
            target = _prepare(cur, fleet, start, end, replace=replace, if_empty=if_empty)
            if target is not None:
                copy = COPY_SQL.replace(TABLE, target, 1)
                formatted = (
                    (to_csv(rows), rows.num_rows, log_rows)
                    for rows, log_rows in generate_blocks(
                        start, end, seed=seed, turbines=turbines, faults=faults, ramp=ramp
                    )
                )
                for payload, count, log_rows in ahead(formatted):  # next block made meanwhile
                    cur.copy_expert(copy, io.BytesIO(payload), size=COPY_CHUNK)
                    generated += count
                    if faults_log is not None and log_rows is not None:
                        write_faults_csv(log_rows, faults_log, header=not header_written)
                        header_written = True
                        logged += log_rows.num_rows
                    done += 1
                    if progress and blocks > 1:
                        progress(
                            f"block {done}/{blocks}: {generated:,} rows copied"
                            f" ({time.perf_counter() - began:.1f} s)"
                        )
                written = generated if target == TABLE else _insert_new(cur)
    finally:
        conn.close()
    return SeedReport(
        start=start,
        end=end,
        turbines=turbines,
        rows_generated=generated,
        rows_written=written,
        seconds=time.perf_counter() - began,
        faults_logged=logged,
    )


def _prepare(
    cur, fleet: list[Turbine], start: datetime, end: datetime, *, replace: bool, if_empty: bool
) -> str | None:
    """Where to COPY: the table when the fleet's range is empty, else a temporary table; None
    when ``if_empty`` finds rows.

    The lock keeps concurrent seeders from filling the range between the check and the COPY;
    plain reads (the API) are not blocked by it.
    """
    ensure_schema(cur)
    cur.execute("SET LOCAL TimeZone = 'UTC'")  # the CSV's timestamps are naive UTC
    cur.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
    if if_empty:
        cur.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE})")
        if cur.fetchone()[0]:
            return None
    columns = ", ".join(("id", *schema.TURBINE_PROPERTIES))
    cur.executemany(
        f"INSERT INTO {TURBINE_TABLE} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO NOTHING",
        [(t.id, t.rated_power, t.cut_in, t.rated_speed, t.cut_out, t.x, t.y) for t in fleet],
    )
    ids = [t.id for t in fleet]
    in_range = (
        f'{TABLE} WHERE {schema.TURBINE_COLUMN} = ANY(%s) AND "timestamp" >= %s'
        ' AND "timestamp" < %s'
    )
    if replace:
        cur.execute(f"DELETE FROM {in_range}", (ids, start, end))
        return TABLE
    cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {in_range})", (ids, start, end))
    if cur.fetchone()[0]:
        return TABLE
    cur.execute(f"CREATE TEMP TABLE incoming (LIKE {TABLE}) ON COMMIT DROP")
    return "incoming"


def _insert_new(cur) -> int:
    """Insert-or-ignore from the temporary table; the number of rows actually inserted."""
    cur.execute(
        f"INSERT INTO {TABLE} ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM incoming"
        f' ON CONFLICT ({schema.TURBINE_COLUMN}, "timestamp") DO NOTHING'
    )
    return cur.rowcount
