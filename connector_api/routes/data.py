"""GET /data: readings of a half-open time range, in the format the client asks for."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from connector_api import db
from connector_api.deps import (
    ApiKey,
    PoolDep,
    TurbinesDep,
    VariablesDep,
    only_parameters,
    select_turbines,
)
from connector_api.formats import ARROW_MEDIA_TYPE, FORMATS, Format, NotAcceptable, negotiate
from connector_api.streaming import GuardedStream

# Rows per chunk read from the database and encoded: about five weeks of one turbine's minutes,
# a few MB. A range expected to fit in one chunk is read on a pooled connection and answered
# whole; a larger one streams from its own connection and snapshot.
CHUNK_ROWS = 50_000

# What PostgreSQL, Python, numpy and pandas' nanosecond timestamps (which end in 2262) all read
# alike: a timestamp outside it is refused as out of range rather than half-understood.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

TIMESTAMP_HELP = (
    "an ISO 8601 timestamp YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|±HH:MM] (UTC unless it has an offset)"
)
PARAMETER_HELP = {
    "start": f"{TIMESTAMP_HELP}, inclusive, e.g. 2024-01-01T00:00:00Z",
    "end": f"{TIMESTAMP_HELP}, exclusive, e.g. 2024-01-02T00:00:00Z",
    "variables": "variable names, repeated or comma-separated, e.g. wind_speed,power",
    "turbines": "turbine ids, repeated or comma-separated, e.g. WTG01,WTG02",
    "format": f"allowed: {', '.join(FORMATS)}",
}

router = APIRouter(tags=["data"], dependencies=[ApiKey, Depends(only_parameters(*PARAMETER_HELP))])

# Checked before parsing, so a 400-digit "timestamp" is refused instead of being read as
# 1111-11-11 (datetime.fromisoformat takes a run of digits as a basic-format date and time).
_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)
_SPACED_OFFSET = re.compile(r"(?<=\d) (\d\d(?::?\d\d)?)$")


def _restore_plus(text: str) -> str:
    """An unencoded ``+02:00`` in a URL arrives as `` 02:00``: read it as the offset it was."""
    return _SPACED_OFFSET.sub(r"+\1", text)


def parse_timestamp(name: str, text: str) -> datetime:
    """An aware UTC datetime; 422 naming the parameter and the expected form otherwise."""
    cleaned = _restore_plus(text.strip()).upper()
    shown = text if len(text) <= 40 else f"{text[:40]}… ({len(text)} characters)"
    out_of_range = HTTPException(
        422,
        f"timestamp {name}={shown!r} is out of range: supported from"
        f" {EARLIEST:%Y-%m-%dT%H:%M:%SZ} to {LATEST:%Y-%m-%dT%H:%M:%SZ}",
    )
    if not _ISO_8601.fullmatch(cleaned):
        raise HTTPException(
            422, f"malformed timestamp {name}={shown!r}; expected {PARAMETER_HELP[name]}"
        )
    if cleaned.startswith("0000"):
        raise out_of_range  # well-formed, but no calendar has a year 0
    try:
        value = datetime.fromisoformat(cleaned)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # the offset moves it past year 1 or 9999
        raise out_of_range from None
    except ValueError as error:  # month 13, February 30, hour 24
        raise HTTPException(
            422, f"malformed timestamp {name}={shown!r}: {error}; expected {PARAMETER_HELP[name]}"
        ) from None
    if not EARLIEST <= value <= LATEST:
        raise out_of_range
    return value


def select_variables(requested: Sequence[str] | None, allowed: Sequence[str]) -> list[str]:
    """Requested names (repeated and/or comma-separated) checked against the catalogue."""
    names = [n.strip() for item in requested or () for n in item.split(",") if n.strip()]
    if not names:
        return list(allowed)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise HTTPException(
            422,
            f"unknown variable(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
        )
    return list(dict.fromkeys(names))  # duplicates once, in the order asked


@router.get(
    "/data",
    summary="Readings of a time range",
    response_class=Response,
    responses={
        200: {
            "description": "Rows with start <= timestamp < end, ordered by (turbine_id, time).",
            "content": {
                "application/json": {
                    "example": [
                        {
                            "turbine_id": "WTG01",
                            "timestamp": "2024-01-01T00:00:00Z",
                            "wind_speed": 7.42,
                            "power": 812.5,
                        }
                    ]
                },
                "application/x-ndjson": {},
                "text/csv": {
                    "example": "turbine_id,timestamp,wind_speed,power\n"
                    "WTG01,2024-01-01T00:00:00Z,7.42,812.5\n"
                },
                ARROW_MEDIA_TYPE: {},
            },
        },
        406: {"description": "The Accept header names no supported format."},
    },
)
async def get_data(
    request: Request,
    pool: PoolDep,
    allowed: VariablesDep,
    fleet: TurbinesDep,
    start: Annotated[
        str,
        Query(
            description=PARAMETER_HELP["start"],
            examples=["2024-01-01T00:00:00Z"],
            json_schema_extra={"format": "date-time"},
        ),
    ],
    end: Annotated[
        str,
        Query(
            description=PARAMETER_HELP["end"],
            examples=["2024-01-02T00:00:00Z"],
            json_schema_extra={"format": "date-time"},
        ),
    ],
    variables: Annotated[
        list[str] | None,
        Query(
            description=PARAMETER_HELP["variables"] + "; omitted means all",
            examples=[["wind_speed,power"]],
        ),
    ] = None,
    turbines: Annotated[
        list[str] | None,
        Query(
            description=PARAMETER_HELP["turbines"] + "; omitted means all",
            examples=[["WTG01"]],
        ),
    ] = None,
    output_format: Annotated[
        Literal["json", "ndjson", "csv", "arrow"] | None,
        Query(alias="format", description="Overrides the Accept header.", examples=["arrow"]),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Rows of ``[start, end)``; one response for a small range, streamed chunks for a large one."""
    begin, finish = parse_timestamp("start", start), parse_timestamp("end", end)
    if finish <= begin:
        raise HTTPException(
            422, f"end ({end}) must be after start ({start}): the range is [start, end)"
        )
    names = select_variables(variables, allowed)
    chosen_turbines = await select_turbines(request, turbines, fleet)
    try:
        chosen = negotiate(output_format, accept)
    except NotAcceptable as error:
        raise HTTPException(406, str(error)) from None
    count = len(chosen_turbines) if chosen_turbines is not None else len(fleet)
    expected_rows = math.ceil((finish - begin).total_seconds() / 60) * max(count, 1)
    if expected_rows < CHUNK_ROWS:
        # Validation above runs on the event loop; the read and encoding take one thread hop.
        body = await run_in_threadpool(
            respond_whole, pool, names, chosen_turbines, begin, finish, chosen
        )
        if body is not None:
            return Response(body, media_type=chosen.media_type)
    return await stream(request, names, chosen_turbines, begin, finish, chosen)


def respond_whole(
    pool, names: list[str], turbines: list[str] | None, start, end, chosen: Format
) -> bytes | None:
    """The whole body from one pooled read, or None when the range holds more than a chunk."""
    with db.raw_connection(pool) as conn:
        table = db.read_table(conn, names, turbines, start, end, limit=CHUNK_ROWS)
    if table.num_rows >= CHUNK_ROWS:
        return None  # more rows than minutes (readings off the minute grid): stream it
    return b"".join(chosen.encode([table], names))


async def stream(
    request: Request, names: list[str], turbines: list[str] | None, start, end, chosen: Format
) -> Response:
    """Stream the range from a connection of its own, released however the client behaves."""
    state = request.app.state
    if not await state.stream_slots.acquire():
        raise HTTPException(
            503,
            f"the API is already streaming {state.stream_slots.limit} large ranges at once;"
            " retry in a few seconds, or ask for a shorter range",
            headers={"Retry-After": "5"},
        )
    conn = reader = None
    try:
        conn = await run_in_threadpool(state.stream_pool.connect)
        reader = db.RangeReader(conn.dbapi_connection, names, turbines, start, end, CHUNK_ROWS)
        chunks = iter(reader)
        first = await run_in_threadpool(next, chunks, None)  # database errors: a 503 here
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_close, reader, conn)
        state.stream_slots.release()
        raise
    pieces = chosen.encode(chain([first] if first is not None else [], chunks), names)

    def close() -> None:
        pieces.close()
        _close(reader, conn)

    return GuardedStream(
        pieces,
        media_type=chosen.media_type,
        stall_timeout=state.settings.stall_timeout_seconds,
        close=close,
        slots=state.stream_slots,
    )


def _close(reader: db.RangeReader | None, conn) -> None:
    """Stop the stream's COPY; its pooled connection goes back to the pool if the stream was
    read to the end, and is closed otherwise (the server ends the session, whatever it did)."""
    finished = reader is not None and reader.finished
    if reader is not None:
        reader.close()
    if conn is not None:
        if not finished:
            conn.invalidate()
        conn.close()
