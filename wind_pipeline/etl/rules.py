"""The digest of the quality rules a day was computed under, stored in ``loaded_day.rules``.

A day's statistics depend on its readings *and* on the rules that judged them: each selected
variable's limits from ``GET /variables`` (ranges, ``max_step``, and whatever else describes how a
variable is judged, such as its kind or frozen rule) and the rules in our own code. When either
changes, a day loaded before was computed under other rules and ``wind-etl sync`` reloads it
(reason ``rules changed``).

The digest takes every field of ``Variable`` except those that only describe it to a person
(``unit``, ``description``), so a field added to ``Variable`` later joins the digest without a
change here. Code rules cannot be read from data: a release that changes how a rule judges a
reading bumps ``RULES_VERSION``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wind_pipeline.etl.catalogue import Variable

if TYPE_CHECKING:
    from wind_pipeline.etl.record import LoadedRecord

# Bump when a release changes how quality control judges a reading (docs: README, "Late and
# corrected readings"): every day loaded under the old rules then counts as changed.
RULES_VERSION = 1
# Fields of ``Variable`` that never change a statistic: a new unit text is not a new rule.
NOT_RULES = frozenset({"unit", "description"})
DIGEST_LENGTH = 16  # hex digits: 64 bits, far beyond the number of rule sets a target meets


def rules_digest(variables: Mapping[str, Variable], quality_control: bool) -> str:
    """A short stable digest, e.g. ``r1-3f9a0c2d41b7e6a5``, of the rules of ``variables``.

    The variables' order does not matter (each day's statistics of one variable do not depend on
    another's). Without quality control no limit judges a reading, so the limits are left out:
    a range change then changes nothing, and the digest says only "QC off" and the code's rules.
    """
    described: dict[str, Any] = {"rules_version": RULES_VERSION, "quality_control": quality_control}
    if quality_control:
        described["variables"] = {name: _rules_of(variables[name]) for name in sorted(variables)}
    else:
        described["variables"] = sorted(variables)
    text = json.dumps(described, sort_keys=True, separators=(",", ":"), default=str)
    return f"r{RULES_VERSION}-{hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]}"


def _rules_of(variable: Variable) -> dict[str, Any]:
    return {
        field.name: _plain(getattr(variable, field.name))
        for field in dataclasses.fields(variable)
        if field.name not in NOT_RULES
    }


def _plain(value: Any) -> Any:
    """JSON-ready and order-stable: sets sorted, tuples as lists, enums by value, and numbers
    as floats (a limit of ``60`` and one of ``60.0`` are the same rule)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, frozenset | set):
        return sorted(_plain(item) for item in value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return getattr(value, "value", value)


def record_rules(
    catalogue: Mapping[str, Variable], quality_control: bool
) -> Callable[[LoadedRecord], str]:
    """The digest each loaded day's *own* variables have under today's ``catalogue``.

    A day is compared under the variables it was loaded with, not under the caller's selection:
    a day loaded with ``--variables all`` is not "rules changed" to a sync of the default pair,
    which would otherwise reload it with the pair alone and leave its other signals stale. A
    variable the catalogue no longer describes changes the digest (the day is reloaded with the
    variables that remain).
    """

    digests: dict[tuple[str, ...], str] = {}  # a window's records share a few variable sets

    def rules_of(record: LoadedRecord) -> str:
        names = tuple(record.variables)
        if names not in digests:
            kept = {name: catalogue[name] for name in names if name in catalogue}
            digests[names] = rules_digest(kept, quality_control)
        return digests[names]

    return rules_of


def reload_variables(
    requested: Sequence[str], recorded: Iterable[Sequence[str]], catalogue: Mapping[str, Variable]
) -> list[str]:
    """The variables a reload of some loaded days uses: the ones asked for, then every other
    variable those days were loaded with that the catalogue still describes, so that a reload
    never narrows what a day holds."""
    chosen = list(requested)
    for names in recorded:
        chosen += [name for name in names if name in catalogue and name not in chosen]
    return chosen
