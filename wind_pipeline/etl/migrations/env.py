"""Alembic's environment for the target: always given an open connection by ``upgrade_schema``.

There is no ``alembic.ini``: ``schema.upgrade_schema`` builds the config in code and passes its
connection (already in a transaction holding the upgrade lock) as ``config.attributes``.
"""

from alembic import context

from wind_pipeline.etl.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
