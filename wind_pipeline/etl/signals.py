"""What a signal is: one statistic of one variable of one turbine, ``WTG01.wind_speed_mean``.

The statistics, their order and the rule for when each is defined live here and nowhere else
(``signal_rows`` applies that rule to whole columns; this module stays free of numpy so that
``wind-etl --help`` answers before it loads).
Units are not here: they come from the source's ``GET /variables`` (``catalogue``).
"""

from __future__ import annotations

# The one order: the STATS table's columns, the signal rows, the metadata tables.
STATISTICS: tuple[str, ...] = ("mean", "min", "max", "std", "count", "rejected")

# What the pipeline moves when nobody says otherwise (README, "Data conventions").
DEFAULT_VARIABLES: tuple[str, ...] = ("wind_speed", "power")

# Valid readings a window needs for the statistic to exist (README, "Data conventions"): count
# and rejected are written for every window, mean/min/max from one valid reading, the sample std
# from two.
MIN_COUNT: dict[str, int] = {"mean": 1, "min": 1, "max": 1, "std": 2, "count": 0, "rejected": 0}

# Statistics that are counts: no unit, always defined.
COUNTS: frozenset[str] = frozenset({"count", "rejected"})

_WORDS = {
    "mean": "mean of the valid readings",
    "min": "minimum of the valid readings",
    "max": "maximum of the valid readings",
    "std": "sample standard deviation (ddof=1) of the valid readings",
    "count": "number of valid one-minute readings",
    "rejected": "number of readings present but rejected by quality control",
}


def signal_name(turbine: str, variable: str, statistic: str) -> str:
    """``<turbine>.<variable>_<statistic>``: today's name behind the turbine and a dot.

    A dot never occurs in a variable (a SQL column name) or a turbine id, so the name splits
    back unambiguously, and ``name LIKE 'WTG01.%'`` selects a turbine.
    """
    return f"{turbine}.{variable}_{statistic}"


def signal_unit(statistic: str, variable_unit: str | None) -> str | None:
    """A count has no unit; the other statistics share the variable's unit."""
    return None if statistic in COUNTS else variable_unit


def signal_description(turbine: str, variable: str, statistic: str) -> str:
    return (
        f"10-minute {_WORDS[statistic]} of {variable} of turbine {turbine}, "
        "windows [t, t+10 min) in UTC"
    )
