"""GET /days: per (UTC day, turbine), how many readings the source holds and their version."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from itertools import repeat
from typing import Annotated

import numpy as np
import orjson
import pyarrow as pa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from connector_api import db
from connector_api.deps import ApiKey, PoolDep, TurbinesDep, only_parameters, select_turbines
from connector_api.schema import TURBINE_COLUMN
from connector_api.versions import SUMMARY_TABLE

# The longest range one request may ask for: ten years of days (a fleet of 50 is 183,000 rows).
MAX_DAYS = 3660
# The days the rest of the API reads alike (as /data's timestamps).
EARLIEST, LATEST = date(1900, 1, 1), date(2200, 1, 1)

DATE_HELP = "a UTC date YYYY-MM-DD"
PARAMETER_HELP = {
    "start": f"{DATE_HELP}, inclusive, e.g. 2024-01-01",
    "end": f"{DATE_HELP}, exclusive, e.g. 2024-01-31",
    "turbines": "turbine ids, repeated or comma-separated, e.g. WTG01,WTG02",
}

router = APIRouter(tags=["days"], dependencies=[ApiKey, Depends(only_parameters(*PARAMETER_HELP))])

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


class Day(BaseModel):
    """One (UTC day, turbine) of the source: its rows, first and last timestamps, version."""

    day: date
    turbine_id: str
    readings: int
    first_timestamp: datetime
    last_timestamp: datetime
    version: str


def parse_day(name: str, text: str) -> date:
    """A date; 422 naming the parameter and the expected form otherwise."""
    shown = text if len(text) <= 40 else f"{text[:40]}… ({len(text)} characters)"
    if not _DATE.fullmatch(text.strip()):
        raise HTTPException(
            422, f"malformed date {name}={shown!r}; expected {PARAMETER_HELP[name]}"
        )
    try:
        value = date.fromisoformat(text.strip())
    except ValueError as error:  # month 13, February 30
        raise HTTPException(
            422, f"malformed date {name}={shown!r}: {error}; expected {PARAMETER_HELP[name]}"
        ) from None
    if not EARLIEST <= value <= LATEST:
        raise HTTPException(
            422, f"date {name}={shown!r} is out of range: supported from {EARLIEST} to {LATEST}"
        )
    return value


def days_query(start: date, end: date, turbines: list[str] | None) -> str:
    """The summary rows of ``[start, end)``, read by the primary key (day, turbine_id).

    Dates are written from parsed values, turbine ids only after the fleet accepted them.
    """
    conditions = [f"day >= DATE '{start.isoformat()}'", f"day < DATE '{end.isoformat()}'"]
    if turbines is not None:
        conditions.append(f"{TURBINE_COLUMN} IN ({', '.join(db.literal(t) for t in turbines)})")
    return (
        f"SELECT day, {TURBINE_COLUMN}, readings, first_timestamp, last_timestamp,"
        f" version::text FROM {SUMMARY_TABLE} WHERE {' AND '.join(conditions)}"
        f" ORDER BY day, {TURBINE_COLUMN}"
    )


def _timestamps(column: pa.ChunkedArray) -> list[str]:
    """ISO 8601 UTC with ``Z`` as /data writes them: whole seconds unless the value is finer."""
    us = column.combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    stamps = us.astype("datetime64[us]")
    text = np.datetime_as_string(stamps, unit="s", timezone="UTC").astype(object)
    finer = us % 1_000_000 != 0
    if finer.any():
        text[finer] = np.datetime_as_string(stamps[finer], unit="us", timezone="UTC")
    return text.tolist()


def _refuse_if_not_upgraded(pool) -> None:
    """A clear 503 for a source that an earlier release made and nothing has upgraded yet."""
    with db.raw_connection(pool) as conn:
        found = db.fetch(conn, f"SELECT to_regclass({db.literal(SUMMARY_TABLE)}) IS NOT NULL")
    if not found[0][0]:
        raise HTTPException(
            503,
            "the source has no per-day versions yet: run `connector-api serve` or"
            " `connector-api seed` once, which upgrade it in place",
        )


def read_days(pool, start: date, end: date, turbines: list[str] | None) -> bytes:
    """The JSON body: one object per summary row, in (day, turbine_id) order."""
    try:
        with db.raw_connection(pool) as conn:
            cur = conn.cursor()
            try:
                cur.execute(days_query(start, end, turbines))
                table = cur.fetch_arrow_table()
            finally:
                cur.close()
    except db.ERRORS:
        _refuse_if_not_upgraded(pool)
        raise
    keys = ("day", "turbine_id", "readings", "first_timestamp", "last_timestamp", "version")
    day_numbers = table.column(0).combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False)
    columns = (  # numpy's conversions: a third of the time of pyarrow's to_pylist here
        np.datetime_as_string(day_numbers.astype("datetime64[D]")).tolist(),
        *(table.column(i).to_numpy(zero_copy_only=False).tolist() for i in (1, 2)),
        _timestamps(table.column(3)),
        _timestamps(table.column(4)),
        table.column(5).to_numpy(zero_copy_only=False).tolist(),
    )
    return orjson.dumps(list(map(dict, map(zip, repeat(keys), zip(*columns, strict=True)))))


@router.get(
    "/days",
    summary="Per UTC day and turbine: readings, first and last timestamps, version",
    response_class=Response,
    responses={
        200: {
            "model": list[Day],
            "description": "One object per (day, turbine) with at least one row, ordered by"
            " (day, turbine_id).",
            "content": {
                "application/json": {
                    "example": [
                        {
                            "day": "2024-01-01",
                            "turbine_id": "WTG01",
                            "readings": 1440,
                            "first_timestamp": "2024-01-01T00:00:00Z",
                            "last_timestamp": "2024-01-01T23:59:00Z",
                            "version": "1764600000000001",
                        }
                    ]
                }
            },
        }
    },
)
async def get_days(
    request: Request,
    pool: PoolDep,
    fleet: TurbinesDep,
    start: Annotated[
        str,
        Query(
            description=PARAMETER_HELP["start"],
            examples=["2024-01-01"],
            json_schema_extra={"format": "date"},
        ),
    ],
    end: Annotated[
        str,
        Query(
            description=PARAMETER_HELP["end"],
            examples=["2024-01-31"],
            json_schema_extra={"format": "date"},
        ),
    ],
    turbines: Annotated[
        list[str] | None,
        Query(description=PARAMETER_HELP["turbines"] + "; omitted means all", examples=[["WTG01"]]),
    ] = None,
) -> Response:
    """The days of ``[start, end)`` (UTC dates) that hold at least one row, per turbine.

    ``readings`` counts the rows of the day, a row whose readings are all NULL included (a gap
    has no row). ``version`` is an opaque string that changes whenever a row of that day and
    turbine is inserted, updated or deleted, and never otherwise: a reader that kept it knows
    whether to read the day again (compare versions for equality only, never for order).
    Served from a summary the source keeps per (day, turbine), so the cost grows with the days
    and turbines asked, not with the table's history.
    """
    first, last = parse_day("start", start), parse_day("end", end)
    if last <= first:
        raise HTTPException(
            422, f"end ({end}) must be after start ({start}): the range of days is [start, end)"
        )
    if last - first > timedelta(days=MAX_DAYS):
        raise HTTPException(
            422,
            f"the range {start} to {end} spans {(last - first).days} days; at most {MAX_DAYS}"
            " per request",
        )
    chosen = await select_turbines(request, turbines, fleet)
    body = await run_in_threadpool(read_days, pool, first, last, chosen)
    return Response(body, media_type="application/json")
