"""The physical model: one block of days x the whole fleet, fault-free, computed with numpy.

Each turbine sees the farm's wind (``weather``) with its own correlated deviation (its own
stream, seeded by ``(seed, day, turbine)``), less the wake of the turbines upstream of it in the
current direction; it has its own power curve, its own downtime, and a vane and nacelle
(``directions``, a stream of their own, so adding them left the other values unchanged).
Because every random stream is keyed by the day (and the turbine), a minute's values depend only
on the seed, its day, its turbine and the farm: overlapping seeds agree, and a range can be
re-seeded or extended without touching what is there (insert-or-ignore).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

import numpy as np

from connector_api.calendar import MINUTES_PER_DAY
from connector_api.generator import directions
from connector_api.generator.farm import Turbine, farm, power_curve, wake_deficit, yaw_misalignment
from connector_api.generator.weather import ar1, farm_wind, temperature_base

# The columns the generator writes, in the source table's order, and their resolution.
VARIABLES = ("wind_speed", "power", "ambient_temperature", "wind_direction", "nacelle_position")
LINEAR = VARIABLES[:3]
DECIMALS = {
    "wind_speed": 2,
    "power": 1,
    "ambient_temperature": 2,
    "wind_direction": directions.DECIMALS,
    "nacelle_position": directions.DECIMALS,
}

# Each turbine's own deviation from the farm's speed: relative, AR(1) with ~50 min memory.
DEVIATION, DEVIATION_AR = 0.12, 0.98

RESTART_BELOW = 5.0  # m/s under cut-out: a stopped turbine restarts at 20 m/s (hysteresis)
POWER_NOISE = 15.0  # kW, standard deviation while producing
# Idle below cut-in, a turbine draws its own consumption from the grid (yaw, heating, controls):
# a small negative power, as a real farm's SCADA shows (down to about -18 kW).
SELF_CONSUMPTION, SELF_CONSUMPTION_NOISE, SELF_CONSUMPTION_RANGE = 11.5, 2.0, (5.0, 18.0)  # kW

# Downtime: on some days a turbine stops for a few hours whatever the wind.
DOWNTIME_PROBABILITY, DOWNTIME_MINUTES = 0.1, (60, 360)


@dataclass
class Block:
    """Fault-free (then faulty) readings of days x turbines: arrays (days, turbines, minutes)."""

    days: list[date]
    values: dict[str, np.ndarray]
    keep: np.ndarray | None = None  # False where a gap removes the row
    faults: list[tuple[int, int, int, str | None, str]] | None = None  # day, turbine, minute, …


class Model:
    """The farm's precomputed parts: curves, the wake per degree of direction, misalignments."""

    def __init__(self, fleet: list[Turbine]) -> None:
        self.fleet = fleet
        self.numbers = [int(t.id[3:]) for t in fleet]

        def column(name: str) -> np.ndarray:
            return np.array([getattr(t, name) for t in fleet])[:, None]

        self.curve = {name: column(name) for name in ("rated_power", "cut_in", "rated_speed")}
        self.cut_out = column("cut_out")
        self.wake_table = wake_deficit(fleet, np.arange(361.0))  # (turbines, 361), 1° steps
        self.misalignment = np.array([yaw_misalignment(n) for n in self.numbers])

    def wake(self, direction: np.ndarray) -> np.ndarray:
        """Deficit (turbines, days, minutes) for directions (days, minutes), interpolated."""
        d = np.mod(direction, 360.0)
        low = np.floor(d).astype(np.intp)
        frac = d - low
        table = self.wake_table
        return table[:, low] * (1 - frac) + table[:, low + 1] * frac  # (turbines, days, minutes)

    def block(self, seed: int, days: list[date]) -> Block:
        """The fault-free readings of ``days`` for the whole fleet."""
        n_days, n_turbines = len(days), len(self.fleet)
        speed, direction, weather = farm_wind(seed, days)
        own = np.empty((n_days, n_turbines, 3, MINUTES_PER_DAY))
        own_scalars = np.empty((n_days, n_turbines, 4))
        yaw = np.empty((n_days, n_turbines, 2, MINUTES_PER_DAY))
        for i, day in enumerate(days):
            for j, number in enumerate(self.numbers):
                rng = np.random.default_rng([seed, day.toordinal(), number])
                own[i, j] = rng.standard_normal((3, MINUTES_PER_DAY))
                own_scalars[i, j] = rng.random(4)
                yaw[i, j] = np.random.default_rng(
                    [seed, day.toordinal(), number, 2]
                ).standard_normal((2, MINUTES_PER_DAY))

        # each turbine's view of the farm's wind
        deviation = 1.0 + DEVIATION * ar1(own[:, :, 0], DEVIATION_AR)
        wake = np.moveaxis(self.wake(direction), 0, 1)  # (days, turbines, minutes)
        wind = np.maximum(speed[:, None, :] * deviation * (1.0 - wake), 0.0)
        wind = np.round(wind, DECIMALS["wind_speed"])

        power = self._power(wind, own[:, :, 1], own_scalars)

        base = temperature_base(days, weather)
        temperature = base[:, None, :] + 0.2 * own[:, :, 2] + (own_scalars[:, :, 3:4] - 0.5)
        vane = directions.vane(direction, yaw)
        values = {
            "wind_speed": wind,
            "power": np.round(power, DECIMALS["power"]),
            "ambient_temperature": np.round(temperature, DECIMALS["ambient_temperature"]),
            "wind_direction": vane,
            "nacelle_position": directions.nacelle(vane, self.misalignment),
        }
        return Block(days=days, values=values)

    def _power(self, wind: np.ndarray, noise: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        """Each turbine's curve, with cut-out hysteresis, noise while producing, downtime, and
        self-consumption while idle below cut-in."""
        curve = power_curve(wind, cut_out=np.inf, **self.curve)
        # stopped from cut-out until the wind falls below the restart speed
        event = np.where(
            wind >= self.cut_out, 1, np.where(wind < self.cut_out - RESTART_BELOW, -1, 0)
        )
        index = np.where(event != 0, np.arange(MINUTES_PER_DAY), 0)
        last = np.maximum.accumulate(index, axis=-1)
        stopped = np.take_along_axis(event, last, axis=-1) == 1
        producing = np.where(stopped, 0.0, curve)
        power = np.clip(
            producing + POWER_NOISE * noise * (producing > 0), 0.0, self.curve["rated_power"]
        )
        # idle: the noise stream is unused there (no production), so it shapes the consumption
        low, high = SELF_CONSUMPTION_RANGE
        consumption = -np.clip(SELF_CONSUMPTION + SELF_CONSUMPTION_NOISE * noise, low, high)
        power = np.where((wind < self.curve["cut_in"]) & ~stopped, consumption, power)
        # downtime: a few hours on some days, disconnected (0 kW)
        down = scalars[:, :, 0] < DOWNTIME_PROBABILITY
        begin = (scalars[:, :, 1] * MINUTES_PER_DAY).astype(int)
        length = DOWNTIME_MINUTES[0] + (
            scalars[:, :, 2] * (DOWNTIME_MINUTES[1] - DOWNTIME_MINUTES[0])
        ).astype(int)
        minute = np.arange(MINUTES_PER_DAY)
        off = (
            down[..., None] & (minute >= begin[..., None]) & (minute < (begin + length)[..., None])
        )
        return np.where(off, 0.0, power)


@functools.lru_cache(maxsize=4)
def model(turbines: int) -> Model:
    """The farm's model, built once per fleet size (live mode asks for it every minute)."""
    return Model(farm(turbines))
