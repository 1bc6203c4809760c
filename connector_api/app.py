"""``create_app()``: the connector API over the source database. It only ever reads."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from connector_api import db
from connector_api.deps import load_turbine_ids, load_variables
from connector_api.routes import data, days, meta, turbines
from connector_api.settings import Settings
from connector_api.streaming import StreamSlots

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """Every 4xx and 503 body: one sentence naming the problem and what is allowed."""

    detail: str


def _validation_message(error: dict, path: str) -> str:
    name = str(error["loc"][-1]) if error.get("loc") else "request"
    hint = (days.PARAMETER_HELP if path == "/days" else data.PARAMETER_HELP).get(name)
    if error.get("type") == "missing":
        return f"missing parameter: {name}" + (f" ({hint})" if hint else "")
    if name == "format":
        return f"unknown format {error.get('input')!r}; {hint}"
    expected = f"; expected {hint}" if hint else ""
    return f"invalid {name}={error.get('input')!r}: {error.get('msg')}{expected}"


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = "; ".join(_validation_message(e, request.url.path) for e in exc.errors())
    return JSONResponse({"detail": detail}, status_code=422)


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    first_line = db.first_line(getattr(exc, "orig", exc))
    log.warning("source database error: %s", first_line)
    return JSONResponse({"detail": f"source database unavailable: {first_line}"}, status_code=503)


async def _on_pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    """Every pooled connection busy: the database is fine, this API is saturated."""
    log.warning("every pooled connection busy for %s s", db.POOL_TIMEOUT_SECONDS)
    detail = (
        f"the API's database connections were all busy for {db.POOL_TIMEOUT_SECONDS} s;"
        " retry in a few seconds"
    )
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})


def _lifespan(settings: Settings):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pool = db.create_pool(settings.database_url)
        app.state.stream_pool = db.create_pool(  # never waits: the slots bound the streams
            settings.database_url,
            application_name=db.STREAM_APPLICATION_NAME,
            size=2,
            overflow=max(0, settings.max_streams - 2),
        )
        app.state.stream_slots = StreamSlots(
            settings.max_streams, wait=settings.stall_timeout_seconds
        )
        app.state.variables, app.state.turbines = None, []
        try:  # read the catalogue once; a missing table or database is retried per request
            app.state.variables = await run_in_threadpool(load_variables, app.state.pool)
            app.state.turbines = await run_in_threadpool(load_turbine_ids, app.state.pool)
        except db.ERRORS as error:
            log.warning("source database not reachable at startup: %s", db.first_line(error))
        try:
            yield
        finally:
            app.state.pool.dispose()
            app.state.stream_pool.dispose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API; ``settings`` default to the environment (SOURCE_DATABASE_URL, CONNECTOR_API_KEY)."""
    settings = settings or Settings()
    app = FastAPI(
        title="Wind turbine connector API",
        summary="One-minute turbine readings from the source database, as JSON, CSV or Arrow.",
        version="1.0.0",
        lifespan=_lifespan(settings),
        responses={
            401: {"model": Problem, "description": "Missing or wrong X-API-Key."},
            422: {"model": Problem, "description": "A bad parameter, named with what is allowed."},
            503: {"model": Problem, "description": "The source database is unavailable."},
        },
    )
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    for error_type in db.ERRORS:
        app.add_exception_handler(error_type, _on_database_error)
    app.add_exception_handler(db.PoolTimeout, _on_pool_timeout)
    app.include_router(data.router)
    app.include_router(days.router)
    app.include_router(turbines.router)
    app.include_router(meta.router)
    return app
