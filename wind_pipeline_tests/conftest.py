"""Shared fixtures: one embedded PostgreSQL per test session, fresh databases, the API over HTTP."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path

import pytest

from wind_pipeline import local_postgres
from wind_pipeline_tests.databases import drop_database

# A fixed first day keeps every test reproducible; the generator is deterministic per seed.
DAY = date(2024, 1, 1)


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL for the whole session, deleted at exit.

    Its folder is not under pytest's tmp_path: pytest prunes old session folders and resets their
    permissions, which would pull the data folder from under a server of a concurrent session.
    """
    server = local_postgres.start_server(Path(tempfile.mkdtemp(prefix="wpg-")), delete_on_exit=True)
    yield server
    server.cleanup()


@pytest.fixture
def make_database(pg_server) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty databases (dropped after the test); returns their URLs."""
    names: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        names.append(name)
        return local_postgres.create_database(pg_server, name)

    yield make
    for name in names:
        drop_database(pg_server, name)


@pytest.fixture
def source_url(make_database) -> str:
    """An empty source database."""
    return make_database()


@pytest.fixture
def target_url(make_database) -> str:
    """An empty target database."""
    return make_database()


@pytest.fixture
def engine(target_url):
    """A SQLAlchemy engine on the test's target database, its schema created."""
    from wind_pipeline.etl.db import create_engine
    from wind_pipeline.etl.schema import upgrade_schema

    engine = create_engine(target_url)
    upgrade_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def seed_source(source_url) -> Callable[..., object]:
    """Seed the test's source database: ``seed_source(days=1, faults=False, seed=42)``."""
    from wind_pipeline_tests.source import seed

    def run(**options):
        options.setdefault("start", DAY)
        return seed(source_url, **options)

    return run


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yield its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel picks the port: no race with other tests
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def serve_api(source_url) -> Iterator[Callable[..., str]]:
    """Serve the real connector API over HTTP on the test's source database.

    ``serve_api(api_key=None)`` returns the base URL; servers stop at the end of the test.
    """
    from connector_api.app import create_app
    from connector_api.settings import Settings

    with ExitStack() as stack:

        def start(api_key: str | None = None, database_url: str | None = None) -> str:
            settings = Settings(database_url=database_url or source_url, api_key=api_key)
            return stack.enter_context(serve(create_app(settings)))

        yield start


@pytest.fixture(scope="session")
def s3_server():
    """One real S3 server (SeaweedFS's ``weed mini`` on loopback) for the whole session."""
    from wind_pipeline_tests.seaweed import running_object_store

    with running_object_store() as store:
        yield store


def target_row_count(target_url: str, start=None, end=None, turbine: str | None = None) -> int:
    """Rows of the target's ``data``: all of them, or those of ``[start, end)`` and one turbine."""
    import sqlalchemy as sa

    query, conditions = "SELECT count(*) FROM data d", []
    if turbine is not None:
        query += " JOIN signal s ON s.id = d.signal_id"
        conditions.append("s.turbine = :turbine")
    if start is not None:
        conditions.append("d.timestamp >= :start")
    if end is not None:
        conditions.append("d.timestamp < :end")
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    engine = sa.create_engine(target_url)
    try:
        with engine.connect() as conn:
            params = {"start": start, "end": end, "turbine": turbine}
            return conn.execute(sa.text(query), params).scalar_one()
    finally:
        engine.dispose()
