"""GET /variables (what can be asked for) and GET /health (is the source reachable and filled)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from connector_api import db
from connector_api.deps import ApiKey, VariablesDep, only_parameters
from connector_api.schema import TABLE, TIME_COLUMN, TURBINE_COLUMN, TURBINE_TABLE, describe

router = APIRouter(tags=["meta"], dependencies=[Depends(only_parameters())])


class VariableOut(BaseModel):
    """A variable of the source table."""

    name: str = Field(examples=["wind_speed"])
    unit: str | None = Field(
        description="null when the column is not a known one", examples=["m/s"]
    )
    description: str
    physical_min: float | None = Field(
        description="lowest physically possible value", examples=[0.0]
    )
    physical_max: float | None = Field(
        description="highest physically possible value", examples=[40.0]
    )
    max_step: float | None = Field(
        description="largest plausible change between two consecutive one-minute readings;"
        " null when unknown",
        examples=[10.0],
    )
    kind: Literal["linear", "circular"] = Field(
        description="circular: an angle in degrees, period 360, differences wrapped to"
        " [-180, 180); linear otherwise",
        examples=["linear"],
    )
    frozen_minutes: int | None = Field(
        description="equal readings at consecutive minutes that make a stuck sensor;"
        " null when the variable has no frozen rule (it holds still by design)",
        examples=[10],
    )
    frozen_exempt: list[float] = Field(
        description="values allowed to repeat however long (idle, clipped at rated, calm)",
        examples=[[0.0]],
    )


class Health(BaseModel):
    """Whether the source database answers, and which time range it holds."""

    status: str = Field(examples=["ok"])
    database: str = Field(examples=["reachable"])
    table: str | None = Field(None, examples=["present"])
    first_timestamp: str | None = Field(None, examples=["2024-01-01T00:00:00Z"])
    last_timestamp: str | None = Field(None, examples=["2024-01-10T23:59:00Z"])
    detail: str | None = None


@router.get("/variables", dependencies=[ApiKey], summary="The variables /data can return")
async def list_variables(variables: VariablesDep) -> list[VariableOut]:
    """Each numeric column of the source table: unit, description, physical range, max step,
    kind (linear or circular) and its frozen rule; a column without a description is linear,
    unbounded, with the default frozen rule."""
    return [VariableOut(**vars(describe(name))) for name in variables]


def _utc_text(column: str) -> str:
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


# Per turbine, so each min and max is one probe of the primary key (turbine_id, timestamp);
# over the whole table they would be a full scan, which a fleet-year makes seconds long.
_RANGE_QUERY = (
    f"SELECT {_utc_text('min(first)')}, {_utc_text('max(last)')}"
    f' FROM {TURBINE_TABLE} t, LATERAL (SELECT min(d."{TIME_COLUMN}") AS first,'
    f' max(d."{TIME_COLUMN}") AS last FROM {TABLE} d WHERE d.{TURBINE_COLUMN} = t.id) AS r'
)


def _check(settings) -> tuple[int, Health]:
    """On a connection of its own, not the pool's: busy streams or a full pool must not make a
    reachable database look unreachable, and a real outage must not hide behind the pool."""
    try:
        conn = db.connect_reader(
            settings.database_url,
            application_name=db.HEALTH_APPLICATION_NAME,
        )
    except db.ERRORS as error:
        detail = f"source database unreachable: {db.first_line(error)}"
        return 503, Health(status="unavailable", database="unreachable", detail=detail)
    try:
        tables = db.fetch(
            conn,
            f"SELECT to_regclass({db.literal(TABLE)}) IS NOT NULL"
            f" AND to_regclass({db.literal(TURBINE_TABLE)}) IS NOT NULL",
        )
        if not tables[0][0]:
            detail = f"the source table {TABLE!r} does not exist yet; run `connector-api seed`"
            return 503, Health(
                status="unavailable", database="reachable", table="missing", detail=detail
            )
        ((first, last),) = db.fetch(conn, _RANGE_QUERY)
    except db.ERRORS as error:
        detail = f"source database failed a query: {db.first_line(error)}"
        return 503, Health(status="unavailable", database="error", detail=detail)
    finally:
        conn.close()
    return 200, Health(
        status="ok",
        database="reachable",
        table="present",
        first_timestamp=first,
        last_timestamp=last,
    )


@router.get(
    "/health",
    summary="Database status and the range of readings held",
    response_model=Health,
    responses={
        503: {"model": Health, "description": "The source database or table is unavailable."}
    },
)
async def health(request: Request) -> JSONResponse:
    """200 when the source table answers (with its first and last timestamps), else 503."""
    status, body = await run_in_threadpool(_check, request.app.state.settings)
    return JSONResponse(body.model_dump(), status_code=status)
