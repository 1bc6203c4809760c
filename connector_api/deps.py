"""The dependencies the routes declare: the engine, the variables, the API key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine

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


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def load_variables(engine: Engine) -> list[str] | None:
    """The table's numeric columns, or None when the table does not exist yet."""
    with db.raw_connection(engine) as conn:
        return db.read_variables(conn) or None


async def get_variables(request: Request) -> list[str]:
    """The variables read from the catalogue at startup.

    If the table did not exist then (an API started before the first seed), look again now
    rather than serve an empty catalogue until a restart.
    """
    state = request.app.state
    if state.variables is None:
        state.variables = await run_in_threadpool(load_variables, state.engine)
    if state.variables is None:
        raise HTTPException(
            503, "the source table 'data' does not exist yet; seed it with `connector-api seed`"
        )
    return state.variables


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


EngineDep = Annotated[Engine, Depends(get_engine)]
VariablesDep = Annotated[list[str], Depends(get_variables)]
ApiKey = Depends(require_api_key)
