"""Test helpers over the source database: seed whole days, read the newest reading.

They were product code once (``generator.seed``, ``live.last_timestamp``) that only tests and
benchmarks called; the product's own paths are ``generator.write`` and the live appender.
"""

from __future__ import annotations

from datetime import date, datetime

import psycopg2

from connector_api import db, generator
from connector_api.generator import SeedReport


def seed(
    database_url: str,
    *,
    start: date | None = None,
    days: int = 10,
    end: date | None = None,
    faults_log=None,
    **options,
) -> SeedReport:
    """Seed whole days ``[start, end)`` (or ``days`` from ``start``), as ``connector-api seed``.

    ``options``: ``seed, turbines, faults, replace, if_empty`` of ``generator.write``;
    ``faults_log``: a path or a binary file for the CSV truth.
    """
    first, last = generator.resolve_range(start, days, end)
    if faults_log is None or hasattr(faults_log, "write"):
        return generator.write(database_url, first, last, faults_log=faults_log, **options)
    with open(faults_log, "wb") as sink:
        return generator.write(database_url, first, last, faults_log=sink, **options)


def last_timestamp(database_url: str) -> datetime | None:
    """The newest reading's timestamp, or None when the source has none."""
    with psycopg2.connect(db.libpq_url(database_url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT max("timestamp") FROM data')
        return cur.fetchone()[0]
