"""The dependencies the routes declare: the pool, the catalogue, the API key, the parameters."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from sqlalchemy.pool import Pool

from connector_api import db
from connector_api.settings import Settings

API_KEY_HEADER = "X-API-Key"
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Needed on every route but /health and the docs when the server sets one.",
)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_pool(request: Request) -> Pool:
    return request.app.state.pool


def load_variables(pool: Pool) -> list[str] | None:
    """The table's numeric columns, or None when the table does not exist yet."""
    with db.raw_connection(pool) as conn:
        return db.read_variables(conn) or None


def load_turbine_ids(pool: Pool) -> list[str]:
    """The fleet's ids, ordered; empty when the turbine table does not exist yet."""
    with db.raw_connection(pool) as conn:
        return [row[0] for row in db.read_turbines(conn)]


async def get_variables(request: Request) -> list[str]:
    """The variables read from the catalogue at startup.

    If the table did not exist then (an API started before the first seed), look again now
    rather than serve an empty catalogue until a restart.
    """
    state = request.app.state
    if state.variables is None:
        state.variables = await run_in_threadpool(load_variables, state.pool)
    if state.variables is None:
        raise HTTPException(
            503, "the source table 'data' does not exist yet; seed it with `connector-api seed`"
        )
    return state.variables


async def get_turbines(request: Request) -> list[str]:
    """The fleet's ids as last read (at startup, or when a request named one not known then)."""
    state = request.app.state
    if not state.turbines:
        state.turbines = await run_in_threadpool(load_turbine_ids, state.pool)
    return state.turbines


async def select_turbines(
    request: Request, requested: Sequence[str] | None, fleet: list[str]
) -> list[str] | None:
    """Requested ids (repeated and/or comma-separated) checked against the fleet; None = all.

    An id not known yet makes the fleet be read again once (a turbine seeded after the API
    started), so a new turbine is served without a restart and an unknown one still refused.
    """
    ids = [n.strip() for item in requested or () for n in item.split(",") if n.strip()]
    if not ids:
        return None
    if any(i not in fleet for i in ids):
        fleet = request.app.state.turbines = await run_in_threadpool(
            load_turbine_ids, request.app.state.pool
        )
    unknown = [i for i in ids if i not in fleet]
    if unknown:
        raise HTTPException(
            422,
            f"unknown turbine(s): {', '.join(unknown)}; allowed: {', '.join(fleet) or 'none'}",
        )
    return sorted(set(ids))  # rows come in key order whatever the order asked


def only_parameters(*names: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing any query parameter but ``names``: a misspelt one (``variable=``)
    must not be ignored silently, which would answer something other than what was meant."""
    allowed = frozenset(names)
    listed = ", ".join(names) if names else "none"

    async def check(request: Request) -> None:
        unknown = [key for key in dict.fromkeys(request.query_params) if key not in allowed]
        if unknown:
            raise HTTPException(
                422, f"unknown parameter(s): {', '.join(unknown)}; allowed: {listed}"
            )

    return check


async def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    key: Annotated[str | None, Security(_api_key_header)] = None,
) -> None:
    """401 unless the server has no key or the request's X-API-Key matches (constant time)."""
    if settings.api_key is None:
        return
    if key is None or not secrets.compare_digest(key.encode(), settings.api_key.encode()):
        reason = "missing" if key is None else "wrong"
        raise HTTPException(
            401, f"{reason} API key: send the server's key in the {API_KEY_HEADER} header"
        )


PoolDep = Annotated[Pool, Depends(get_pool)]
VariablesDep = Annotated[list[str], Depends(get_variables)]
TurbinesDep = Annotated[list[str], Depends(get_turbines)]
ApiKey = Depends(require_api_key)
