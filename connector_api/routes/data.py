"""GET /data: readings of a half-open time range, in the format the client asks for."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from connector_api import db
from connector_api.deps import ApiKey, EngineDep, VariablesDep
from connector_api.formats import ARROW_MEDIA_TYPE, FORMATS, Format, NotAcceptable, negotiate

# Rows per chunk read from the database and encoded: about five weeks of minutes, a few MB.
CHUNK_ROWS = 50_000

TIMESTAMP_HELP = "an ISO 8601 timestamp (UTC unless it has an offset)"
PARAMETER_HELP = {
    "start": f"{TIMESTAMP_HELP}, inclusive, e.g. 2024-01-01T00:00:00Z",
    "end": f"{TIMESTAMP_HELP}, exclusive, e.g. 2024-01-02T00:00:00Z",
    "variables": "variable names, repeated or comma-separated, e.g. wind_speed,power",
    "format": f"allowed: {', '.join(FORMATS)}",
}

router = APIRouter(tags=["data"], dependencies=[ApiKey])


def _restore_plus(text: str) -> str:
    """An unencoded ``+02:00`` in a URL arrives as `` 02:00``: read it as the offset it was."""
    return _SPACED_OFFSET.sub(r"+\1", text)


_SPACED_OFFSET = re.compile(r"(?<=\d) (\d\d(?::?\d\d)?)$")


def parse_timestamp(name: str, text: str) -> datetime:
    """An aware UTC datetime; 422 naming the parameter and the expected form otherwise."""
    try:
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            value = datetime.fromisoformat(_restore_plus(text.strip()))
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise HTTPException(
            422, f"malformed timestamp {name}={text!r}; expected {PARAMETER_HELP[name]}"
        ) from None


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
            "description": "Rows with start <= timestamp < end, ordered by time.",
            "content": {
                "application/json": {
                    "example": [
                        {"timestamp": "2024-01-01T00:00:00Z", "wind_speed": 7.42, "power": 812.5}
                    ]
                },
                "application/x-ndjson": {},
                "text/csv": {
                    "example": "timestamp,wind_speed,power\n2024-01-01T00:00:00Z,7.42,812.5\n"
                },
                ARROW_MEDIA_TYPE: {},
            },
        },
        406: {"description": "The Accept header names no supported format."},
    },
)
async def get_data(
    engine: EngineDep,
    allowed: VariablesDep,
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
    try:
        chosen = negotiate(output_format, accept)
    except NotAcceptable as error:
        raise HTTPException(406, str(error)) from None
    # Validation above runs on the event loop; the database and encoding take one thread hop.
    return await run_in_threadpool(respond, engine, names, begin, finish, chosen)


def respond(engine, names: list[str], start: datetime, end: datetime, chosen: Format) -> Response:
    """The whole body when the range fits in one chunk, else a stream of encoded chunks."""
    chunks = db.read_chunks(engine, names, start, end, CHUNK_ROWS)
    first = next(chunks)
    if len(first) < CHUNK_ROWS:
        chunks.close()
        body = b"".join(chosen.encode([first], names))
        return Response(body, media_type=chosen.media_type)
    return StreamingResponse(
        chosen.encode(chain([first], chunks), names), media_type=chosen.media_type
    )
