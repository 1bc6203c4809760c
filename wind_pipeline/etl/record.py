"""``loaded_day``: the target's own account of each (day, turbine) it holds, and where it came from.

A load writes the records of its day in the day's own transaction (``DayRecord.write`` is the
load's ``within`` hook), so the rows and the record can never disagree: after a crash both are
the previous ones or both the new ones. ``wind-etl sync`` and the ``source_changes`` sensor read
the records back (``read_records``) and compare them with ``GET /days`` (``etl/sync.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from wind_pipeline.etl import db


class LoadedRecord(NamedTuple):
    """One ``loaded_day`` row as read back (a tuple: a window of 50 turbines x 30 days is 1,500
    of them, cheaper to build than a frozen dataclass, which cost a nothing-changed sync 2.7 ms)."""

    day: date
    turbine: str
    source_version: str | None
    readings: int
    variables: tuple[str, ...]
    quality_control: bool
    rules: str
    loaded_at: datetime
    run_id: str | None


RecordKey = tuple[date, str]  # (day, turbine)

# One statement for the day's turbines, however many: three parallel arrays unnested.
_UPSERT = """
INSERT INTO loaded_day
    (day, turbine, source_version, readings, variables, quality_control, rules, loaded_at, run_id)
SELECT %s, t.turbine, t.version, t.readings, %s::text[], %s, %s, now(), %s
FROM unnest(%s::text[], %s::text[], %s::int[]) AS t(turbine, version, readings)
ON CONFLICT (day, turbine) DO UPDATE SET
    source_version = excluded.source_version,
    readings = excluded.readings,
    variables = excluded.variables,
    quality_control = excluded.quality_control,
    rules = excluded.rules,
    loaded_at = excluded.loaded_at,
    run_id = excluded.run_id
"""
_SELECT = (
    "SELECT day, turbine, source_version, readings, variables, quality_control, rules, "
    "loaded_at, run_id FROM loaded_day WHERE day >= %s AND day <= %s"
)


def write_records(
    cursor: Any,
    day: date,
    turbines: Iterable[str],
    versions: Mapping[str, str | None],
    readings: Mapping[str, int],
    variables: Iterable[str],
    quality_control: bool,
    rules: str,
    run_id: str | None = None,
) -> None:
    """Upsert the records of ``day``'s ``turbines`` with the open transaction's ``cursor``.

    A turbine missing from ``versions`` had no row in ``GET /days`` (version NULL); one missing
    from ``readings`` read none (0). ``loaded_at`` is the transaction's start, the same for every
    turbine of the day.
    """
    names = list(dict.fromkeys(turbines))
    if not names:
        return
    cursor.execute(
        _UPSERT,
        [
            day,
            list(variables),
            quality_control,
            rules,
            run_id,
            names,
            [versions.get(name) for name in names],
            [int(readings.get(name, 0)) for name in names],
        ],
    )


@dataclass(frozen=True)
class DayRecord:
    """Everything a day's record needs but the cursor: ``within=DayRecord(...).write``."""

    day: date
    turbines: tuple[str, ...]
    versions: Mapping[str, str | None]
    readings: Mapping[str, int]
    variables: tuple[str, ...]
    quality_control: bool
    rules: str
    run_id: str | None = None

    def write(self, cursor: Any) -> None:
        write_records(
            cursor,
            self.day,
            self.turbines,
            self.versions,
            self.readings,
            self.variables,
            self.quality_control,
            self.rules,
            self.run_id,
        )


def read_records(
    target: db.RawConnectionSource,
    first_day: date,
    last_day: date,
    turbines: Collection[str] | None = None,
) -> dict[RecordKey, LoadedRecord]:
    """The records of ``first_day``..``last_day`` (inclusive), by (day, turbine); ``turbines``
    None means every turbine. One indexed range query on the primary key."""
    query, params = _SELECT, [first_day, last_day]
    if turbines is not None:
        query += " AND turbine = ANY(%s::text[])"
        params.append(list(turbines))
    conn = db.connect(target)
    try:
        with db.database_errors("reading loaded_day"), conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        conn.rollback()  # end the read's transaction so a pooled connection goes back idle
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return {(r[0], r[1]): LoadedRecord(*r[:4], tuple(r[4]), *r[5:]) for r in rows}
