"""GET /variables (what can be asked for) and GET /health (is the source reachable and filled)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from connector_api import db
from connector_api.deps import ApiKey, EngineDep, VariablesDep
from connector_api.schema import TABLE, TIME_COLUMN, describe

router = APIRouter(tags=["meta"])


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
    """Each numeric column of the source table, with unit, description and physical range."""
    return [VariableOut(**vars(describe(name))) for name in variables]


_RANGE_QUERY = (
    f'SELECT to_char(min("{TIME_COLUMN}") AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS"Z"\'),'
    f' to_char(max("{TIME_COLUMN}") AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS"Z"\')'
    f" FROM {TABLE}"
)


def _check(engine) -> tuple[int, Health]:
    try:
        with db.raw_connection(engine) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
            if not cur.fetchone()[0]:
                detail = f"the source table {TABLE!r} does not exist yet; run `connector-api seed`"
                return 503, Health(
                    status="unavailable", database="reachable", table="missing", detail=detail
                )
            cur.execute(_RANGE_QUERY)
            first, last = cur.fetchone()
    except db.ERRORS as error:
        detail = f"source database unreachable: {db.first_line(error)}"
        return 503, Health(status="unavailable", database="unreachable", detail=detail)
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
def health(engine: EngineDep) -> JSONResponse:
    """200 when the source table answers (with its first and last timestamps), else 503."""
    status, body = _check(engine)
    return JSONResponse(body.model_dump(), status_code=status)
