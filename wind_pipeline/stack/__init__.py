"""``wind-stack``: the whole pipeline on one machine, from one command (``make run``).

Embedded PostgreSQL with one persistent data folder (the ``source``, ``target`` and ``dagster``
databases), the connector API in live mode and ``dagster dev`` (or, with ``--no-dagster``, only
the services, for a ``dagster dev`` of your own). It writes ``./.env``, so that ``dagster`` and
``wind-etl`` typed in the same folder use this stack (``wind_pipeline.localenv``). Each child
runs in its own process group that this command owns, so Ctrl-C, SIGTERM or a closed terminal
stops all of them, then the database, within seconds; so does a broken pipe on its output.
``connector_api`` is started as a process and never imported: the pipeline and its source meet
over HTTP only, as in production.

Modules: ``cli`` (options, the start-up sequence), ``folder`` (the data folder), ``source``
(seed-if-empty), ``processes`` (children and their shutdown), ``network`` (ports, health),
``console`` (errors and what the user reads), ``object_store`` (SeaweedFS's ``weed mini``, also
the tests' S3 server) and ``local_s3`` (``--object-store``: the IO manager's data in it).
"""

from wind_pipeline.stack.cli import main

__all__ = ["main"]
