"""``--faults``: corrupt a block's readings the way real SCADA goes wrong, and keep the truth.

A third stream per (seed, day, turbine) corrupts a copy of the fault-free values, so those are
identical with and without faults, and every corrupted reading is recorded with its reason: the
ground truth that the pipeline's quality control (README, "Data quality") is measured against.
Each fault takes its own hour of the day, keeping two clean minutes from the hour's edges, so no
two faults touch and the truth is unambiguous. The direction faults (a fourth stream) take hours
the others left free.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from connector_api.generator import directions
from connector_api.generator.model import DECIMALS, LINEAR, VARIABLES, Block, Model
from connector_api.schema import KNOWN_VARIABLES

# Faults per turbine-day on the linear variables when asked for.
GAPS, NULL_RUNS, FROZEN_RUNS, OUT_OF_RANGE, SPIKES = 2, 2, 2, 3, 3
OUT_OF_RANGE_VALUES = {"wind_speed": 99.0, "power": -500.0, "ambient_temperature": -99.0}
SPIKE_MARGIN = 1.25  # an in-range spike jumps 1.25 x max_step beyond both neighbours
# Direction faults per turbine-day: a stuck vane (frozen wind direction), a jump of the vane
# across north and back, a nacelle jump and back (spikes), one out-of-range reading of each.
DIRECTION_FAULTS = ("stuck_vane", "vane_jump", "nacelle_jump", "vane_range", "nacelle_range")
ANGLE_OUT_OF_RANGE = (400.0, -5.0)
# An angle spike's distance (degrees) beyond the further neighbour: the vane's jump is close to
# a half turn, so that it crosses north unless the wind blows from 160-200°; the nacelle's is
# 1.5 x its max_step.
ANGLE_SPIKE = {"wind_direction": 160.0, "nacelle_position": 45.0}
# The reasons of the truth log (its `fault` column), the names QC reports.
FAULTS = ("gap", "null", "frozen", "out_of_range", "spike")

Fault = tuple[int, str | None, str]  # minute, variable (None for a gap), reason


def inject(seed: int, model: Model, block: Block) -> None:
    """Corrupt the block in place, one turbine-day at a time; record every corrupted reading."""
    keep = np.ones(block.values["wind_speed"].shape, dtype=bool)
    faults: list[tuple[int, int, int, str | None, str]] = []
    for i, day in enumerate(block.days):
        for j, number in enumerate(model.numbers):
            series = {name: block.values[name][i, j] for name in VARIABLES}
            rng = np.random.default_rng([seed, day.toordinal(), number, 1])
            used: list[int] = []
            found = list(_corrupt(rng, series, keep[i, j], used))
            free = [hour for hour in range(24) if hour not in used]
            rng = np.random.default_rng([seed, day.toordinal(), number, 4])
            found += _corrupt_directions(rng, series, free)
            faults += [(i, j, minute, name, kind) for minute, name, kind in found]
    block.keep, block.faults = keep, faults


def _corrupt(
    rng: np.random.Generator, series: dict[str, np.ndarray], keep: np.ndarray, used: list[int]
) -> Iterator[Fault]:
    """The linear variables' faults of one turbine-day, each in its own hour (added to
    ``used``); a gap or a NULL run of every variable takes the directions too."""
    kinds = ("gap",) * GAPS + ("null",) * NULL_RUNS + ("frozen",) * FROZEN_RUNS
    kinds += ("out_of_range",) * OUT_OF_RANGE + ("spike",) * SPIKES
    hours = rng.permutation(24)[: len(kinds)]
    used += hours.tolist()
    for hour, kind in zip(hours.tolist(), kinds, strict=True):
        first, last = hour * 60 + 2, hour * 60 + 58  # usable minutes: [first, last)
        if kind == "gap":
            at = int(rng.integers(first, last - 1))
            length = int(rng.integers(1, last - at + 1))
            keep[at : at + length] = False
            yield from ((m, None, "gap") for m in range(at, at + length))
        elif kind == "null":
            names = [LINEAR[rng.integers(len(LINEAR))]] if rng.random() < 0.7 else VARIABLES
            at = int(rng.integers(first, last - 5))
            length = int(rng.integers(5, last - at + 1))
            for name in names:
                series[name][at : at + length] = np.nan
                yield from ((m, name, "null") for m in range(at, at + length))
        elif kind == "frozen":
            at = int(rng.integers(first + 1, last - 30))
            length = int(rng.integers(10, last - at - 1))
            inside = [n for n in LINEAR if _freezable(n, series[n][at])]
            yield from _freeze(series, inside[rng.integers(len(inside))], at, length, last)
        elif kind == "out_of_range":
            name = LINEAR[rng.integers(len(LINEAR))]
            at = int(rng.integers(first, last))
            series[name][at] = OUT_OF_RANGE_VALUES[name]
            yield at, name, "out_of_range"
        else:
            yield from _spike(rng, series, first, last)


def _corrupt_directions(
    rng: np.random.Generator, series: dict[str, np.ndarray], free: list[int]
) -> Iterator[Fault]:
    """The direction faults of one turbine-day, each in one of the ``free`` hours."""
    hours = rng.permutation(free)[: len(DIRECTION_FAULTS)]
    for hour, kind in zip(hours.tolist(), DIRECTION_FAULTS, strict=True):
        first, last = hour * 60 + 2, hour * 60 + 58
        if kind == "stuck_vane":
            at = int(rng.integers(first + 1, last - 30))
            length = int(rng.integers(10, last - at - 1))
            if _freezable("wind_direction", series["wind_direction"][at]):
                yield from _freeze(series, "wind_direction", at, length, last)
        elif kind in ("vane_range", "nacelle_range"):
            name = "wind_direction" if kind == "vane_range" else "nacelle_position"
            at = int(rng.integers(first, last))
            series[name][at] = ANGLE_OUT_OF_RANGE[rng.integers(len(ANGLE_OUT_OF_RANGE))]
            yield at, name, "out_of_range"
        else:
            name = "wind_direction" if kind == "vane_jump" else "nacelle_position"
            yield from _angle_spike(rng, series[name], name, first, last)


def _freeze(
    series: dict[str, np.ndarray], name: str, at: int, length: int, last: int
) -> Iterator[Fault]:
    """A stuck sensor: the value at ``at`` repeated for ``length`` (≥ 10) or more minutes.

    The run is exactly what QC will see: the readings just before and after it differ from the
    frozen value (a neighbour that happened to be equal would lengthen the run).
    """
    values = series[name]
    while values[at - 1] == values[at] and length > 10:  # start where the value changes
        at, length = at + 1, length - 1
    frozen = values[at]
    end = at + length
    while end < last and values[end] == frozen:
        end += 1
    if values[at - 1] == frozen or values[end] == frozen or not _freezable(name, frozen):
        return  # no clean place this hour (never seen; keeps the truth exact)
    values[at:end] = frozen
    yield from ((m, name, "frozen") for m in range(at, end))


def _spike(
    rng: np.random.Generator, series: dict[str, np.ndarray], first: int, last: int
) -> Iterator[Fault]:
    """One reading jumping beyond ``max_step`` from both neighbours (same side), still in range."""
    for _ in range(20):
        name = LINEAR[rng.integers(len(LINEAR))]
        at = int(rng.integers(first + 1, last - 1))
        limits = KNOWN_VARIABLES[name]
        step = SPIKE_MARGIN * limits.max_step
        before, after = series[name][at - 1], series[name][at + 1]
        up = round(max(before, after) + step, DECIMALS[name])
        down = round(min(before, after) - step, DECIMALS[name])
        for value in (up, down):
            if _strictly_inside(name, value):
                series[name][at] = value
                yield at, name, "spike"
                return


def _angle_spike(
    rng: np.random.Generator, values: np.ndarray, name: str, first: int, last: int
) -> Iterator[Fault]:
    """One angle jumping beyond ``max_step`` (wrapped) from both neighbours on the same side,
    and back: across north whenever the neighbours let the jump cross it."""
    step = ANGLE_SPIKE[name]
    for _ in range(20):
        at = int(rng.integers(first + 1, last - 1))
        before, after = values[at - 1], values[at + 1]
        # the neighbour further along each way round, and the jump beyond it
        ahead = before if directions.difference(before, after) >= 0 else after
        behind = after if ahead == before else before
        up, down = ahead + step, behind - step
        crossing = [v for v in (up, down) if v >= 360.0 or v < 0.0]
        value = crossing[0] if crossing else (up, down)[rng.integers(2)]
        value = float(directions.wrap360(np.round(np.mod(value, 360.0), DECIMALS[name])))
        d_before = directions.difference(value, before)
        d_after = directions.difference(value, after)
        limit = KNOWN_VARIABLES[name].max_step
        if min(abs(d_before), abs(d_after)) > limit and d_before * d_after > 0:
            values[at] = value
            yield at, name, "spike"
            return


def _strictly_inside(name: str, value: float) -> bool:
    limits = KNOWN_VARIABLES[name]
    return bool(limits.physical_min < value < limits.physical_max)


def _freezable(name: str, value: float) -> bool:
    """Whether a run of ``value`` is a fault: strictly inside the range, and not a value the
    catalogue lets repeat (power idle at 0 or clipped at rated, a calm anemometer)."""
    return _strictly_inside(name, value) and value not in KNOWN_VARIABLES[name].frozen_exempt
