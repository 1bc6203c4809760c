"""What the source offers, as its API describes it: the variables (ranges, units) and turbines.

Physical ranges, units and ``max_step`` are the source's facts; the pipeline reads them from
``GET /variables`` over HTTP instead of keeping its own copy. User lists of variables and turbines
are normalised here, once, for ``wind-etl`` and the assets alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wind_pipeline.etl.errors import InvalidInputError, TerminalError

if TYPE_CHECKING:
    from wind_pipeline.etl.client import ConnectorClient


@dataclass(frozen=True)
class Variable:
    """One numeric column of the source, with the limits quality control judges it by."""

    name: str
    unit: str | None = None
    description: str | None = None
    physical_min: float | None = None  # None: no lower limit
    physical_max: float | None = None  # None: no upper limit
    max_step: float | None = None  # None: no spike rule


@dataclass(frozen=True)
class Catalogue:
    """The source's variables by name (in the API's order) and its turbine ids (sorted)."""

    variables: Mapping[str, Variable]
    turbines: tuple[str, ...]

    def select_variables(self, names: str | Iterable[str] | None) -> tuple[str, ...]:
        """The requested variables, normalised; ``None`` means the default pair."""
        from wind_pipeline.etl.signals import DEFAULT_VARIABLES

        chosen = normalise_names(DEFAULT_VARIABLES if names is None else names)
        if not chosen:
            raise InvalidInputError(
                "no variables given", hint=f"choose from {', '.join(self.variables)}"
            )
        return _known(chosen, tuple(self.variables), "variable")

    def select_turbines(self, names: str | Iterable[str] | None) -> tuple[str, ...]:
        """The requested turbines, normalised, in the given order; ``None`` or empty means all."""
        chosen = normalise_names(() if names is None else names)
        if not chosen:
            if not self.turbines:
                raise TerminalError(
                    "the source has no turbines", hint="seed it: connector-api seed --turbines N"
                )
            return self.turbines
        return _known(chosen, self.turbines, "turbine")

    def limits(self, names: Iterable[str]) -> dict[str, Variable]:
        """The ``Variable`` of each name, in the given order (names already selected)."""
        return {name: self.variables[name] for name in names}


def normalise_names(names: str | Iterable[str]) -> tuple[str, ...]:
    """``"a, b"``, ``[" a"]``, ``["a,b", "a"]`` → ``("a", "b")``: split, strip, drop duplicates."""
    items = [names] if isinstance(names, str) else list(names)
    parts = (part.strip() for item in items for part in str(item).split(","))
    return tuple(dict.fromkeys(part for part in parts if part))


def _known(chosen: tuple[str, ...], allowed: tuple[str, ...], kind: str) -> tuple[str, ...]:
    unknown = [name for name in chosen if name not in allowed]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise InvalidInputError(
            f"unknown {kind}{'s' if len(unknown) > 1 else ''} {listed}",
            hint=f"the source has {', '.join(allowed) or 'none'}",
        )
    return chosen


def fetch_catalogue(client: ConnectorClient) -> Catalogue:
    """The catalogue from ``GET /variables`` and ``GET /turbines``."""
    variables = {item["name"]: _variable(item) for item in _list(client, "/variables")}
    turbines = tuple(sorted(str(item["id"]) for item in _list(client, "/turbines")))
    return Catalogue(variables, turbines)


def _list(client: ConnectorClient, path: str) -> list[dict[str, Any]]:
    body = client.get_json(path)
    if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
        raise TerminalError(
            f"the connector API's {path} is not a list of objects",
            hint="check that --api-url points at the connector API",
        )
    return body


def _variable(item: Mapping[str, Any]) -> Variable:
    def number(key: str) -> float | None:
        value = item.get(key)
        return None if value is None else float(value)

    return Variable(
        name=str(item["name"]),
        unit=item.get("unit"),
        description=item.get("description"),
        physical_min=number("physical_min"),
        physical_max=number("physical_max"),
        max_step=number("max_step"),
    )
