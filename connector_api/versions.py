"""Source versions: a summary row per (turbine, UTC day), kept by triggers on ``data``.

``day_version`` holds, for every (day, turbine) with at least one row, the rows' count, the first
and last timestamps and a ``version``: a number drawn from a sequence by every statement that
inserts, updates or deletes a reading of that day, and by nothing else. ``GET /days`` reads it by
its primary key (day, turbine_id), so its cost grows with the days and turbines asked, never with
the table's history.

Statement-level triggers with transition tables keep it: one aggregate per statement over the
rows the statement actually changed (an insert-or-ignore that inserts nothing changes nothing), so
a seed's COPY of a year pays one grouped upsert, not a trigger call per row. The alternatives
were measured in ``benchmarks/bench_days.py`` (a digest of the rows computed per request reads
every row of the days asked).

The sequence starts at the microseconds since 1970 when it is created, so a source dropped and
created again never hands out a version that an earlier source already used.
"""

from __future__ import annotations

from connector_api.schema import TABLE, TIME_COLUMN, TURBINE_COLUMN

SUMMARY_TABLE = "day_version"
SEQUENCE = "day_version_seq"
FUNCTION = "day_version_track"
TRUNCATE_FUNCTION = "day_version_clear"
TRIGGERS = {
    "INSERT": "day_version_insert",
    "UPDATE": "day_version_update",
    "DELETE": "day_version_delete",
}
TRUNCATE_TRIGGER = "day_version_truncate"

_DAY = f"(\"{TIME_COLUMN}\" AT TIME ZONE 'UTC')::date"  # the UTC day of a reading

CREATE_SEQUENCE = f"""
CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}
    START WITH {{start}} MINVALUE 1 NO MAXVALUE NO CYCLE
"""

CREATE_SUMMARY = f"""
CREATE TABLE IF NOT EXISTS {SUMMARY_TABLE} (
    day date NOT NULL,
    {TURBINE_COLUMN} text NOT NULL,
    readings bigint NOT NULL,
    first_timestamp timestamptz NOT NULL,
    last_timestamp timestamptz NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (day, {TURBINE_COLUMN})
)
"""

# The rows a statement added (inserted, or an update's new images): counted per (turbine, day)
# and merged into the summary, each touched day drawing a new version.
_ADDED = f"""
INSERT INTO {SUMMARY_TABLE} AS s
    (day, {TURBINE_COLUMN}, readings, first_timestamp, last_timestamp, version)
SELECT {_DAY}, {TURBINE_COLUMN}, count(*), min("{TIME_COLUMN}"), max("{TIME_COLUMN}"),
       nextval('{SEQUENCE}')
FROM new_rows
GROUP BY 1, 2
ON CONFLICT (day, {TURBINE_COLUMN}) DO UPDATE SET
    readings = s.readings + excluded.readings,
    first_timestamp = least(s.first_timestamp, excluded.first_timestamp),
    last_timestamp = greatest(s.last_timestamp, excluded.last_timestamp),
    version = excluded.version
"""

# The rows a statement removed (deleted, or an update's old images): the count goes down, the
# first and last timestamps are read again from the table (two probes of its primary key).
_REMOVED = f"""
UPDATE {SUMMARY_TABLE} AS s SET
    readings = s.readings - gone.readings,
    version = nextval('{SEQUENCE}'),
    first_timestamp = coalesce((
        SELECT min(d."{TIME_COLUMN}") FROM {TABLE} d
        WHERE d.{TURBINE_COLUMN} = s.{TURBINE_COLUMN}
          AND d."{TIME_COLUMN}" >= s.day::timestamp AT TIME ZONE 'UTC'
          AND d."{TIME_COLUMN}" < (s.day + 1)::timestamp AT TIME ZONE 'UTC'
    ), s.first_timestamp),
    last_timestamp = coalesce((
        SELECT max(d."{TIME_COLUMN}") FROM {TABLE} d
        WHERE d.{TURBINE_COLUMN} = s.{TURBINE_COLUMN}
          AND d."{TIME_COLUMN}" >= s.day::timestamp AT TIME ZONE 'UTC'
          AND d."{TIME_COLUMN}" < (s.day + 1)::timestamp AT TIME ZONE 'UTC'
    ), s.last_timestamp)
FROM (SELECT {_DAY} AS day, {TURBINE_COLUMN}, count(*) AS readings
      FROM old_rows GROUP BY 1, 2) AS gone
WHERE s.day = gone.day AND s.{TURBINE_COLUMN} = gone.{TURBINE_COLUMN}
"""

# A day whose last reading went has no summary row (GET /days lists days with a reading).
_EMPTIED = f"""
DELETE FROM {SUMMARY_TABLE} AS s
USING (SELECT DISTINCT {_DAY} AS day, {TURBINE_COLUMN} FROM old_rows) AS gone
WHERE s.day = gone.day AND s.{TURBINE_COLUMN} = gone.{TURBINE_COLUMN} AND s.readings <= 0
"""

# One function for the three triggers: PL/pgSQL plans a statement when it first runs it, so the
# branch an INSERT trigger never takes may name old_rows, which only the others declare.
CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {_REMOVED};
        {_EMPTIED};
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        {_ADDED};
    END IF;
    RETURN NULL;
END
$body$
"""

CREATE_TRUNCATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TRUNCATE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    DELETE FROM {SUMMARY_TABLE};
    RETURN NULL;
END
$body$
"""

_TRANSITIONS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}


def _create_triggers(cur) -> None:
    for event, name in TRIGGERS.items():
        cur.execute(
            f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {TABLE}"
            f" REFERENCING {_TRANSITIONS[event]}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )
    cur.execute(
        f"CREATE OR REPLACE TRIGGER {TRUNCATE_TRIGGER} AFTER TRUNCATE ON {TABLE}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {TRUNCATE_FUNCTION}()"
    )


# Every existing (turbine, day) gets its summary and a version, in one pass over the table.
BACKFILL = f"""
INSERT INTO {SUMMARY_TABLE}
    (day, {TURBINE_COLUMN}, readings, first_timestamp, last_timestamp, version)
SELECT day, {TURBINE_COLUMN}, readings, first_timestamp, last_timestamp, nextval('{SEQUENCE}')
FROM (SELECT {_DAY} AS day, {TURBINE_COLUMN}, count(*) AS readings,
             min("{TIME_COLUMN}") AS first_timestamp, max("{TIME_COLUMN}") AS last_timestamp
      FROM {TABLE} GROUP BY 1, 2 ORDER BY 1, 2) AS days
"""


def ensure_versions(cur) -> bool:
    """Create the summary, its sequence and triggers if missing; True when the rows were built.

    Runs inside :func:`connector_api.schema.ensure_schema`'s transaction, after ``data`` exists
    and under its lock. A source of an earlier release (rows, no summary) is upgraded in place:
    the triggers are created first, which locks ``data`` against writes until the commit, then
    every (turbine, day) already there gets its row and a version. Cheap when all is in place
    (one catalogue query), since ``connector-api serve --live`` calls it every minute.
    """
    cur.execute(
        "SELECT to_regclass(%s) IS NOT NULL,"
        " (SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(%s)"
        "  AND tgname = ANY(%s) AND NOT tgisinternal)",
        (SUMMARY_TABLE, TABLE, [*TRIGGERS.values(), TRUNCATE_TRIGGER]),
    )
    has_summary, triggers = cur.fetchone()
    if has_summary and triggers == len(TRIGGERS) + 1:
        return False
    cur.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
    cur.execute(CREATE_SEQUENCE.format(start=int(cur.fetchone()[0])))
    cur.execute(CREATE_SUMMARY)
    cur.execute(CREATE_FUNCTION)
    cur.execute(CREATE_TRUNCATE_FUNCTION)
    _create_triggers(cur)
    if has_summary:
        # a trigger was dropped: changes may have been missed, so every day is summarised
        # again and gets a new version (a reader reloads once rather than trust a stale row)
        cur.execute(f"DELETE FROM {SUMMARY_TABLE}")
    cur.execute(BACKFILL)
    return True
