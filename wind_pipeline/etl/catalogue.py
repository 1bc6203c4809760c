"""What the source offers, as its API describes it: the variables (ranges, units) and turbines.

Physical ranges, units, ``max_step``, ``kind`` and the frozen rule are the source's facts; the
pipeline reads them from ``GET /variables`` over HTTP instead of keeping its own copy. A source of
an earlier release serves no ``kind``/``frozen_minutes``/``frozen_exempt``: the defaults are the
rules it was judged by (linear, runs of 10, the bounds may repeat). User lists of variables and
turbines are normalised here, once, for ``wind-etl`` and the assets alike.

One variable is not a source column: ``yaw_error``, the wrapped difference wind direction minus
nacelle position (README "Directions"). It exists when the source has both, is chosen by name like
any other, and carries its two sources' rules, so whoever holds it can QC its inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wind_pipeline.etl.errors import InvalidInputError, TerminalError

if TYPE_CHECKING:
    from wind_pipeline.etl.client import ConnectorClient


LINEAR, CIRCULAR = "linear", "circular"
KINDS = (LINEAR, CIRCULAR)
FROZEN_MINUTES = 10  # a source that does not say: runs of 10 equal readings are frozen

YAW_ERROR = "yaw_error"
YAW_ERROR_SOURCES = ("wind_direction", "nacelle_position")  # yaw error = first - second, wrapped
YAW_ERROR_UNIT = "deg"  # when the source gives the wind direction no unit
YAW_ERROR_DESCRIPTION = (
    "Yaw error: wind direction minus nacelle position, wrapped to [-180, 180); positive when the "
    "wind comes from clockwise of where the nacelle points."
)
ALL = "all"  # --variables all / run config "all": every variable, derived ones included


@dataclass(frozen=True)
class Variable:
    """One variable of the source, with the rules quality control judges it by.

    ``frozen_exempt`` None means the source did not say: the bounds may repeat (the rule of
    releases before it). ``sources`` is empty for a source column; a derived variable
    (``yaw_error``) lists the variables it is computed from, with their own rules.
    """

    name: str
    unit: str | None = None
    description: str | None = None
    physical_min: float | None = None  # None: no lower limit
    physical_max: float | None = None  # None: no upper limit
    max_step: float | None = None  # None: no spike rule
    kind: str = LINEAR
    frozen_minutes: int | None = FROZEN_MINUTES  # None: no frozen rule
    frozen_exempt: tuple[float, ...] | None = None
    sources: tuple[Variable, ...] = ()

    def __post_init__(self) -> None:
        # Stored selections come back from JSON (lists, dicts): make them hashable values again.
        if self.frozen_exempt is not None:
            exempt = tuple(float(v) for v in self.frozen_exempt)
            object.__setattr__(self, "frozen_exempt", exempt)
        sources = tuple(v if isinstance(v, Variable) else Variable(**v) for v in self.sources)
        object.__setattr__(self, "sources", sources)
        if self.kind not in KINDS:
            raise TerminalError(
                f"variable {self.name!r} has kind {self.kind!r}",
                hint=f"the connector API should serve one of {', '.join(KINDS)}",
            )

    @property
    def circular(self) -> bool:
        return self.kind == CIRCULAR

    @property
    def exempt(self) -> tuple[float, ...]:
        """The values allowed to repeat in a frozen-length run."""
        if self.frozen_exempt is not None:
            return self.frozen_exempt
        return tuple(v for v in (self.physical_min, self.physical_max) if v is not None)

    @property
    def columns(self) -> tuple[str, ...]:
        """The source columns this variable is read from."""
        return tuple(v.name for v in self.sources) or (self.name,)


@dataclass(frozen=True)
class Catalogue:
    """The source's variables by name (in the API's order) and its turbine ids (sorted)."""

    variables: Mapping[str, Variable]
    turbines: tuple[str, ...]

    def select_variables(self, names: str | Iterable[str] | None) -> tuple[str, ...]:
        """The requested variables, normalised; ``None`` means the default pair, ``"all"`` every
        variable (``yaw_error`` included when the source has its two directions)."""
        from wind_pipeline.etl.signals import DEFAULT_VARIABLES

        chosen = normalise_names(DEFAULT_VARIABLES if names is None else names)
        if ALL in chosen:
            if len(chosen) > 1:
                raise InvalidInputError(
                    f"{ALL!r} cannot be combined with other variables",
                    hint=f"give {ALL!r} alone, or a list of names",
                )
            return tuple(self.variables)
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

    def source_columns(self, names: Iterable[str]) -> tuple[str, ...]:
        """The source columns the extract fetches for ``names`` (``yaw_error`` needs its two)."""
        return source_columns(self.limits(names).values())


def source_columns(variables: Iterable[Variable]) -> tuple[str, ...]:
    """The source columns of ``variables``, each once, in order."""
    return tuple(source_variables(variables))


def source_variables(variables: Iterable[Variable]) -> dict[str, Variable]:
    """The source columns of ``variables`` with their rules, each once, in order: what a check
    of the raw readings judges (``yaw_error`` stands for its two columns)."""
    return {v.name: v for variable in variables for v in (variable.sources or (variable,))}


def with_derived(variables: Mapping[str, Variable]) -> dict[str, Variable]:
    """The source's variables and, when it has both directions, ``yaw_error`` after them."""
    described = dict(variables)
    if YAW_ERROR in described or not all(name in described for name in YAW_ERROR_SOURCES):
        return described  # a source column called yaw_error stays the source's
    wind, nacelle = (described[name] for name in YAW_ERROR_SOURCES)
    described[YAW_ERROR] = Variable(
        YAW_ERROR,
        unit=wind.unit or YAW_ERROR_UNIT,
        description=YAW_ERROR_DESCRIPTION,
        physical_min=-180.0,
        physical_max=180.0,
        kind=CIRCULAR,
        frozen_minutes=None,
        frozen_exempt=(),
        sources=(wind, nacelle),
    )
    return described


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
    return Catalogue(fetch_variables(client), fetch_turbines(client))


def fetch_variables(client: ConnectorClient) -> dict[str, Variable]:
    """``GET /variables`` as the catalogue's variables (derived ones included); apart from
    ``fetch_turbines`` so that a caller can read both at once (``etl/reload.py``'s ``snapshot``)."""
    described = {item["name"]: _variable(item) for item in _list(client, "/variables")}
    return with_derived(described)


def fetch_turbines(client: ConnectorClient) -> tuple[str, ...]:
    """``GET /turbines`` as the catalogue's turbine ids, sorted."""
    return tuple(sorted(str(item["id"]) for item in _list(client, "/turbines")))


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

    kind = item.get("kind") or LINEAR
    minutes = item.get("frozen_minutes", FROZEN_MINUTES)  # absent: today's rule; null: no rule
    exempt = item.get("frozen_exempt")
    return Variable(
        name=str(item["name"]),
        unit=item.get("unit"),
        description=item.get("description"),
        physical_min=number("physical_min"),
        physical_max=number("physical_max"),
        max_step=number("max_step"),
        kind=str(kind),
        frozen_minutes=None if minutes is None else int(minutes),
        frozen_exempt=None if exempt is None else tuple(float(v) for v in exempt),
    )
