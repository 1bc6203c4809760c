"""The source tables, what their columns mean, the catalogue query, and the in-place upgrade.

``data`` holds one row per (turbine, minute); ``turbine`` the fleet's properties. A source made
by an earlier release (``data`` keyed on ``timestamp`` alone, no ``turbine``; or without the
direction columns) is upgraded in place by :func:`ensure_schema`, its rows kept (as turbine
``WTG01``; NULL directions): ``connector-api seed`` and ``serve`` both call it.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE = "data"
TIME_COLUMN = "timestamp"
TURBINE_TABLE = "turbine"
TURBINE_COLUMN = "turbine_id"
TURBINE_PROPERTIES = ("rated_power", "cut_in", "rated_speed", "cut_out", "x", "y")

CREATE_TURBINE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TURBINE_TABLE} (
    id text PRIMARY KEY,
    rated_power double precision,
    cut_in double precision,
    rated_speed double precision,
    cut_out double precision,
    x double precision,
    y double precision
)
"""

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    {TURBINE_COLUMN} text NOT NULL REFERENCES {TURBINE_TABLE}(id),
    "timestamp" timestamptz NOT NULL,
    wind_speed double precision,
    power double precision,
    ambient_temperature double precision,
    wind_direction double precision,
    nacelle_position double precision,
    PRIMARY KEY ({TURBINE_COLUMN}, "timestamp")
)
"""

# The fleet, ordered by id (what GET /turbines serves).
TURBINES_QUERY = f"SELECT id, {', '.join(TURBINE_PROPERTIES)} FROM {TURBINE_TABLE} ORDER BY id"

# The variables are the numeric columns of `data`, so a new column needs no code change here.
# `turbine_id` is text, so it is never one.
CATALOGUE_QUERY = """
SELECT a.attname
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
WHERE c.oid = to_regclass(%s)
  AND a.attnum > 0 AND NOT a.attisdropped
  AND a.atttypid IN ('float8'::regtype, 'float4'::regtype, 'numeric'::regtype,
                     'int2'::regtype, 'int4'::regtype, 'int8'::regtype)
ORDER BY a.attnum
"""

# The one turbine of a previous-release source, and turbine 1 of every generated fleet:
# a generic 3 MW machine at the origin of the farm.
FIRST_TURBINE = "WTG01"
DEFAULT_TURBINE = {
    "rated_power": 3000.0,
    "cut_in": 3.0,
    "rated_speed": 12.0,
    "cut_out": 25.0,
    "x": 0.0,
    "y": 0.0,
}

# Columns later releases added to `data`: an earlier source gains them on its next start, NULL in
# the rows it already has (a column without a default: PostgreSQL rewrites nothing).
ADDED_COLUMNS = ("wind_direction", "nacelle_position")

# Serialises concurrent upgrades (the compose seed one-shot and the API start together).
_SCHEMA_LOCK = 0x77696E64  # "wind"


def turbine_id(number: int) -> str:
    """``WTG01`` for turbine 1: two digits, three beyond 99."""
    return f"WTG{number:02d}"


def ensure_schema(cur) -> None:
    """Create the tables if missing, or upgrade a previous-release source in place; then the
    per-day versions (:mod:`connector_api.versions`), which an earlier source gets too."""
    from connector_api.versions import ensure_versions  # it builds on this module's names

    _ensure_tables(cur)
    ensure_versions(cur)


def _ensure_tables(cur) -> None:
    """Create the tables if missing, or upgrade an earlier release's source in place.

    Idempotent, and safe to run concurrently (a transaction-scoped advisory lock): the caller
    commits. A source of the first release gains ``turbine_id``, every existing row as ``WTG01``
    (a constant default, so PostgreSQL does not rewrite the table), and ``data`` is re-keyed on
    ``(turbine_id, timestamp)``; a source of any earlier release gains the direction columns
    (ADDED_COLUMNS), NULL in its rows.
    """
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
    cur.execute(CREATE_TURBINE_TABLE)
    cur.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
        " AND attnum > 0 AND NOT attisdropped",
        (TABLE,),
    )
    present = {name for (name,) in cur.fetchall()}
    if not present:
        cur.execute(CREATE_TABLE)
        return
    if TURBINE_COLUMN not in present:
        _add_turbines(cur)
    missing = [name for name in ADDED_COLUMNS if name not in present]
    if missing:  # checked first: ALTER TABLE would lock out readers even when nothing is added
        cur.execute(
            f"ALTER TABLE {TABLE} "
            + ", ".join(f"ADD COLUMN {name} double precision" for name in missing)
        )


def _add_turbines(cur) -> None:
    """The fleet release's upgrade: every existing row becomes turbine ``WTG01``."""
    columns = ", ".join(("id", *TURBINE_PROPERTIES))
    cur.execute(
        f"INSERT INTO {TURBINE_TABLE} ({columns}) VALUES (%s{', %s' * len(TURBINE_PROPERTIES)})"
        " ON CONFLICT (id) DO NOTHING",
        (FIRST_TURBINE, *(DEFAULT_TURBINE[name] for name in TURBINE_PROPERTIES)),
    )
    cur.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
        (TABLE,),
    )
    for (name,) in cur.fetchall():
        cur.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
    cur.execute(
        f"ALTER TABLE {TABLE} ADD COLUMN {TURBINE_COLUMN} text NOT NULL"
        f" DEFAULT '{FIRST_TURBINE}' REFERENCES {TURBINE_TABLE}(id)"
    )
    cur.execute(f"ALTER TABLE {TABLE} ALTER COLUMN {TURBINE_COLUMN} DROP DEFAULT")
    cur.execute(f'ALTER TABLE {TABLE} ALTER COLUMN "timestamp" SET NOT NULL')
    cur.execute(f'ALTER TABLE {TABLE} ADD PRIMARY KEY ({TURBINE_COLUMN}, "timestamp")')


LINEAR, CIRCULAR = "linear", "circular"
KINDS = (LINEAR, CIRCULAR)
FROZEN_MINUTES = 10  # a stuck sensor: this many equal readings at consecutive minutes


@dataclass(frozen=True)
class Variable:
    """A numeric column of the source table, as `/variables` describes it: the one source of the
    ranges, units, kinds and quality rules the pipeline applies (README, "Data quality").

    ``kind``: ``linear``, or ``circular`` for an angle in degrees (period 360; differences are
    wrapped). ``max_step`` is the largest plausible change between two consecutive one-minute
    readings (the spike rule); None when unknown, which means no spike rule. ``frozen_minutes``:
    how many equal readings in a row make a stuck sensor (None: no frozen rule, for a signal
    that holds still by design); ``frozen_exempt``: the values allowed to repeat that long.
    """

    name: str
    unit: str | None
    description: str
    physical_min: float | None = None
    physical_max: float | None = None
    max_step: float | None = None
    kind: str = LINEAR
    frozen_minutes: int | None = FROZEN_MINUTES
    frozen_exempt: tuple[float, ...] = ()


KNOWN_VARIABLES = {
    "wind_speed": Variable(
        "wind_speed",
        "m/s",
        "Hub-height wind speed, one-minute mean.",
        0.0,
        40.0,
        10.0,
        frozen_exempt=(0.0,),  # calm: below the anemometer's threshold it reads 0 for hours
    ),
    "power": Variable(
        "power",
        "kW",
        "Active power of a 3 MW turbine, one-minute mean; negative while idle (the turbine's own"
        " consumption).",
        -150.0,  # -5 % of rating: idle self-consumption
        3450.0,  # +15 %: brief overshoot above rated
        1500.0,
        frozen_exempt=(0.0, 3000.0),  # idle or disconnected; clipped at rated power
    ),
    "ambient_temperature": Variable(
        "ambient_temperature", "°C", "Ambient air temperature at the nacelle.", -40.0, 50.0, 5.0
    ),
    "wind_direction": Variable(
        "wind_direction",
        "°",
        "Direction the wind comes from at the nacelle's vane, degrees clockwise from north,"
        " in [0, 360).",
        0.0,
        360.0,
        90.0,
        kind=CIRCULAR,
    ),
    "nacelle_position": Variable(
        "nacelle_position",
        "°",
        "Direction the nacelle (the rotor) faces, degrees clockwise from north, in [0, 360); it"
        " holds still while the wind stays inside the yaw dead band.",
        0.0,
        360.0,
        30.0,  # about a yaw drive's rate per minute
        kind=CIRCULAR,
        frozen_minutes=None,
    ),
}


def describe(name: str) -> Variable:
    """The known description of a column, or an honest 'unknown' for a column added later:
    linear, no bounds, the default frozen rule."""
    return KNOWN_VARIABLES.get(
        name, Variable(name, None, "A numeric column of the source table (no description).")
    )
