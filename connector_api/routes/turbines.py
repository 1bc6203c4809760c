"""GET /turbines: the fleet the source holds, with each turbine's properties."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from connector_api import db
from connector_api.deps import ApiKey, PoolDep, only_parameters
from connector_api.schema import TURBINE_PROPERTIES

router = APIRouter(tags=["meta"], dependencies=[ApiKey, Depends(only_parameters())])


class TurbineOut(BaseModel):
    """A turbine of the fleet: its id (what /data's ``turbines=`` takes) and its properties."""

    id: str = Field(examples=["WTG01"])
    rated_power: float | None = Field(description="kW", examples=[3000.0])
    cut_in: float | None = Field(description="m/s", examples=[3.0])
    rated_speed: float | None = Field(description="m/s", examples=[12.0])
    cut_out: float | None = Field(description="m/s", examples=[25.0])
    x: float | None = Field(description="metres, position in the farm", examples=[0.0])
    y: float | None = Field(description="metres, position in the farm", examples=[0.0])


def _read(pool) -> list[TurbineOut]:
    with db.raw_connection(pool) as conn:
        rows = db.read_turbines(conn)
    return [TurbineOut(**dict(zip(("id", *TURBINE_PROPERTIES), row, strict=True))) for row in rows]


@router.get("/turbines", summary="The turbines /data can return")
async def list_turbines(pool: PoolDep) -> list[TurbineOut]:
    """Every turbine of the source, ordered by id; empty before the first seed."""
    return await run_in_threadpool(_read, pool)
