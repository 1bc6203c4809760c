"""What a run moves: its turbines and its variables with their rules, from one catalogue read.

Apart from ``pipeline.py`` (which re-exports both names) so that a caller that only compares,
like ``wind-etl sync`` with nothing changed, reads the catalogue without importing numpy or
pyarrow (README, "Measured performance").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from wind_pipeline.etl.catalogue import Catalogue, Variable, fetch_catalogue, source_columns

if TYPE_CHECKING:
    from wind_pipeline.etl.client import ConnectorClient


@dataclass(frozen=True)
class Selection:
    """What a run moves: its turbines, and its variables with the catalogue's limits and units.

    Built once per run from the catalogue (``select``); the transform needs every selected
    turbine (one without readings still gets its windows) and the limits, the load the turbines
    it replaces and the units. ``whole_fleet`` keeps the API request short ("all turbines").
    """

    turbines: tuple[str, ...]
    limits: Mapping[str, Variable]
    whole_fleet: bool = False

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(self.limits)

    @property
    def columns(self) -> tuple[str, ...]:
        """The source columns the extract fetches: ``yaw_error`` needs its two directions."""
        return source_columns(self.limits.values())

    @property
    def asked(self) -> tuple[str, ...] | None:
        """The turbines to name in the API request; None asks for all of them."""
        return None if self.whole_fleet else self.turbines

    def to_json(self) -> str:
        limits = [asdict(v) for v in self.limits.values()]
        return json.dumps(
            {"turbines": list(self.turbines), "variables": limits, "whole_fleet": self.whole_fleet}
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Selection:
        stored = json.loads(text)
        limits = {item["name"]: Variable(**item) for item in stored["variables"]}
        return cls(tuple(stored["turbines"]), limits, bool(stored.get("whole_fleet", False)))


def select(
    client: ConnectorClient,
    variables: str | Sequence[str] | None = None,
    turbines: str | Sequence[str] | None = None,
) -> Selection:
    """The run's selection from one read of the catalogue; None means the defaults / all."""
    return selection_of(fetch_catalogue(client), variables, turbines)


def selection_of(
    catalogue: Catalogue,
    variables: str | Sequence[str] | None = None,
    turbines: str | Sequence[str] | None = None,
) -> Selection:
    """``select`` on a catalogue already read: bad turbines are reported before bad variables."""
    fleet = catalogue.select_turbines(turbines)
    limits = catalogue.limits(catalogue.select_variables(variables))
    return Selection(fleet, limits, whole_fleet=fleet == catalogue.turbines)
