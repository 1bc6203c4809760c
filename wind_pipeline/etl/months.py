"""The target's ``data`` table, partitioned by month: one partition per UTC month, plus DEFAULT.

Why months: dropping old data is ``DROP TABLE`` of a partition instead of a ``DELETE`` that
leaves dead rows to vacuum, and a month's reads and a day's replace touch one partition's index
(README, "Beyond one machine"). A month's partition is ``data_YYYY_MM`` and holds
``[first of the month, first of the next)`` in UTC. ``data_default`` catches a row of a month
without its partition; it stays empty because the load creates its months first, and the
blocking check ``default_partition_empty`` (counting with ``default_partition_rows``) says when
it is not: a row there would block creating its month and escape ``prune``.

A new month is made as a plain table and then attached: ``ATTACH PARTITION`` takes only a
SHARE UPDATE EXCLUSIVE lock on ``data`` (loads writing other months and readers go on), where
``CREATE TABLE … PARTITION OF`` takes ACCESS EXCLUSIVE on it and would queue every load and
every reader behind the longest one running. Both take ACCESS EXCLUSIVE on the DEFAULT
partition, which is empty and which neither a day's load nor a bounded read touches (they are
pruned to their months; ``test_months.py`` shows an attach not waiting for either). A read with
an open end (``timestamp >= x`` alone) does scan DEFAULT, and an attach waits for it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

PARENT = "data"
DEFAULT_PARTITION = "data_default"
_NAME = re.compile(r"^data_(\d{4})_(\d{2})$")
# pg_advisory_xact_lock(int, int) namespace of "creating month N" ("WMON"); N = year*12 + month-1.
_MONTH_LOCK = 0x574D4F4E

Month = tuple[int, int]  # (year, month)


def month_of(day: date) -> Month:
    return day.year, day.month


def next_month(month: Month) -> Month:
    year, number = month
    return (year + 1, 1) if number == 12 else (year, number + 1)


def months_between(first: Month, last: Month) -> Iterator[Month]:
    """Every month from ``first`` to ``last``, both included."""
    month = first
    while month <= last:
        yield month
        month = next_month(month)


def partition_name(month: Month) -> str:
    return f"data_{month[0]:04d}_{month[1]:02d}"


def parse_partition_name(name: str) -> Month | None:
    """The month of a partition's name; None for DEFAULT or any other name."""
    match = _NAME.match(name)
    return (int(match[1]), int(match[2])) if match else None


def month_start(month: Month) -> datetime:
    return datetime(month[0], month[1], 1, tzinfo=UTC)


def create_months(cur: Any, months: list[Month]) -> list[str]:
    """Create the partitions of ``months`` that are missing, in the cursor's transaction.

    Each month is created under a transaction-scoped advisory lock of its own, so two loads
    racing to create the same new month queue on it and the second finds it made. Returns the
    names created, in month order. Needs ``data`` to be partitioned already.
    """
    created = []
    for month in sorted(set(months)):
        name = partition_name(month)
        cur.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (_MONTH_LOCK, month[0] * 12 + month[1] - 1)
        )
        # A query of pg_class, not to_regclass(): waiting on an advisory lock does not refresh
        # the backend's catalog cache, so to_regclass() can miss a month the lock's previous
        # holder just committed; a plain SELECT reads the catalog with a fresh snapshot.
        cur.execute(
            "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
            "WHERE c.relname = %s AND s.nspname = current_schema())",
            (name,),
        )
        if cur.fetchone()[0]:
            continue
        # Names come from integers only (partition_name), never from input text.
        cur.execute(
            f'CREATE TABLE "{name}" (LIKE "{PARENT}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS); '
            f'ALTER TABLE "{PARENT}" ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)',
            (month_start(month), month_start(next_month(month))),
        )
        created.append(name)
    return created


def existing_months(cur: Any) -> list[Month]:
    """The months that have a partition, in order."""
    cur.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        (PARENT,),
    )
    return sorted(m for (name,) in cur.fetchall() if (m := parse_partition_name(name)) is not None)


def ensure_months(conn: Any, first_day: date, last_day: date) -> list[str]:
    """Make sure every month of ``[first_day, last_day]`` has its partition; idempotent.

    ``conn`` is an idle DBAPI connection (psycopg2); this runs in its own short transaction and
    commits it, so call it before a day's transaction, never inside one: attaching a partition
    must not wait behind, or hold up, a day's locks. When every month exists already (every day
    but a month's first) it is one round trip that takes no lock. Returns the names created.
    """
    from wind_pipeline.etl import db

    wanted = list(months_between(month_of(first_day), month_of(last_day)))
    names = [partition_name(month) for month in wanted]
    with db.database_errors(f"creating the month partitions of {first_day}..{last_day}"):
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT n FROM unnest(%s::text[]) AS n WHERE to_regclass(n) IS NULL", (names,)
                )
                missing = [parse_partition_name(name) for (name,) in cur.fetchall()]
                created = create_months(cur, [m for m in missing if m is not None])
            conn.commit()
            return created
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise


def default_partition_rows(conn: Any) -> int:
    """Rows in the DEFAULT partition: a month written without its partition; should be 0.

    ``conn`` is a DBAPI connection; reads only (an index-only count of an empty table).
    """
    with conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{DEFAULT_PARTITION}"')
        return int(cur.fetchone()[0])
