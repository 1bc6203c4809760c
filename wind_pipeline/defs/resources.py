"""The two outside systems the assets talk to, opened once per run and closed after it.

With the in-process executor a run is one process, so ``setup_for_execution`` runs once per run:
one HTTP connection pool to the connector API, one SQLAlchemy engine on the target database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

if TYPE_CHECKING:
    import sqlalchemy as sa

    from wind_pipeline.etl.client import ConnectorClient

from wind_pipeline.etl.retries import API_RETRIES, API_TIMEOUT


class ConnectorApiResource(dg.ConfigurableResource):
    """The connector API, the pipeline's only way into the source database."""

    base_url: str
    api_key: str | None = None
    # How long one HTTP request may take, and how often the client itself retries a connection
    # error or a 5xx before the asset's RetryPolicy takes over (the core's defaults).
    timeout_seconds: float = API_TIMEOUT
    retries: int = API_RETRIES

    _client: ConnectorClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from wind_pipeline.etl.client import ConnectorClient

        self._client = ConnectorClient(
            self.base_url, api_key=self.api_key, timeout=self.timeout_seconds, retries=self.retries
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> ConnectorClient:
        """The run's open client."""
        if self._client is None:
            raise RuntimeError("the connector API client exists only while a run executes")
        return self._client


class TargetDatabaseResource(dg.ConfigurableResource):
    """The target PostgreSQL; its schema is brought to the current revision (Alembic) when a run
    starts, as ``wind-etl init-db`` does: a target of the previous release is upgraded in place."""

    url: str

    _engine: sa.Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from wind_pipeline.etl.db import create_engine
        from wind_pipeline.etl.schema import upgrade_schema

        self._engine = create_engine(self.url)
        upgrade_schema(self._engine)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> sa.Engine:
        """The run's engine."""
        if self._engine is None:
            raise RuntimeError("the target database engine exists only while a run executes")
        return self._engine
