"""What a signal is: one statistic of one variable, named ``<variable>_<statistic>``.

Kept apart from ``schema`` so that the load path can name signals without importing SQLAlchemy.
"""

from __future__ import annotations

# Order matters only for display; every window gets ``count``, the others when defined.
STATISTICS: tuple[str, ...] = ("mean", "min", "max", "std", "count")

# Units of the source variables we know; a new variable still loads, with no unit.
VARIABLE_UNITS: dict[str, str] = {
    "wind_speed": "m/s",
    "power": "kW",
    "ambient_temperature": "degC",
}

_STAT_WORDS = {
    "mean": "mean",
    "min": "minimum",
    "max": "maximum",
    "std": "sample standard deviation (ddof=1)",
    "count": "number of non-null one-minute readings",
}


def signal_name(variable: str, statistic: str) -> str:
    return f"{variable}_{statistic}"


def signal_unit(variable: str, statistic: str) -> str | None:
    """A count has no unit; the other statistics share the variable's unit."""
    return None if statistic == "count" else VARIABLE_UNITS.get(variable)


def signal_description(variable: str, statistic: str) -> str:
    return f"10-minute {_STAT_WORDS[statistic]} of {variable}, windows [t, t+10 min) in UTC"
