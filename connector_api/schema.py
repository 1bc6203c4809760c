"""The source table, what its columns mean, and the catalogue query that finds the variables."""

from __future__ import annotations

from dataclasses import dataclass

TABLE = "data"
TIME_COLUMN = "timestamp"

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    "timestamp" timestamptz PRIMARY KEY,
    wind_speed double precision,
    power double precision,
    ambient_temperature double precision
)
"""

# The variables are the numeric columns of `data`, so a new column needs no code change here.
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


@dataclass(frozen=True)
class Variable:
    """A numeric column of the source table, as `/variables` describes it."""

    name: str
    unit: str | None
    description: str
    physical_min: float | None = None
    physical_max: float | None = None


KNOWN_VARIABLES = {
    "wind_speed": Variable(
        "wind_speed", "m/s", "Hub-height wind speed, one-minute mean.", 0.0, 40.0
    ),
    "power": Variable(
        "power", "kW", "Active power of a 3 MW turbine, one-minute mean.", 0.0, 3000.0
    ),
    "ambient_temperature": Variable(
        "ambient_temperature", "°C", "Ambient air temperature at the nacelle.", -40.0, 50.0
    ),
}


def describe(name: str) -> Variable:
    """The known description of a column, or an honest 'unknown' for a column added later."""
    return KNOWN_VARIABLES.get(
        name, Variable(name, None, "A numeric column of the source table (no description).")
    )
