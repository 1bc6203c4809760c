"""The farm's machines and layout: where each turbine stands, its power curve, its wakes.

Fixed, whatever the seed: turbine n of a fleet is always the same machine at the same place, so
a larger fleet extends a smaller one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from connector_api.schema import turbine_id

# Layout: rows of ROW_LENGTH turbines, 5 rotor diameters apart along a row, 7 between rows
# (staggered), turbine 1 at the origin.
ROTOR_DIAMETER = 100.0  # m
ROW_LENGTH, ALONG_ROW, BETWEEN_ROWS = 10, 5 * ROTOR_DIAMETER, 7 * ROTOR_DIAMETER
# Wakes: a Jensen-like deficit (thrust coefficient, wake expansion) with a Gaussian cross-wind
# profile, so the deficit varies smoothly with the direction; combined as a root sum of squares.
THRUST_COEFFICIENT, WAKE_EXPANSION, MAX_DEFICIT = 0.8, 0.075, 0.5
WAKE_CHUNK = 16  # downstream turbines per step of the wake computation

# Machines: generic 3 MW; rated speed varies a little between turbines (turbine 1 is the
# exercise's 3/12/25 m/s machine). Clipping at rated power repeats 3000 kW exactly, a value the
# catalogue lets repeat (power's frozen_exempt), so it is never a frozen run for QC.
RATED_POWER = 3000.0  # kW
CUT_IN, RATED_SPEED, CUT_OUT = 3.0, 12.0, 25.0  # m/s
RATED_SPEEDS = (12.0, 11.5, 12.5, 12.0, 11.0, 13.0)

# Each turbine's static yaw misalignment (degrees, wind direction minus nacelle position on
# average): a few degrees, fixed per machine like its place in the layout.
MAX_MISALIGNMENT = 6.0


@dataclass(frozen=True)
class Turbine:
    """One machine of the farm, as the ``turbine`` table stores it."""

    id: str
    rated_power: float
    cut_in: float
    rated_speed: float
    cut_out: float
    x: float
    y: float


def farm(turbines: int) -> list[Turbine]:
    """The first ``turbines`` machines of the farm layout (fixed: turbine n is always the same)."""
    if turbines < 1:
        raise ValueError(f"turbines must be at least 1, got {turbines}")
    fleet = []
    for index in range(turbines):
        row, column = divmod(index, ROW_LENGTH)
        fleet.append(
            Turbine(
                id=turbine_id(index + 1),
                rated_power=RATED_POWER,
                cut_in=CUT_IN,
                rated_speed=RATED_SPEEDS[index % len(RATED_SPEEDS)],
                cut_out=CUT_OUT,
                x=column * ALONG_ROW + (row % 2) * ALONG_ROW / 2,
                y=row * BETWEEN_ROWS,
            )
        )
    return fleet


def yaw_misalignment(number: int) -> float:
    """Turbine ``number``'s static yaw misalignment in degrees, in ±MAX_MISALIGNMENT.

    The mean of its yaw error (wind direction minus nacelle position, wrapped) over a long
    stretch of clean data comes close to this value.
    """
    draw = np.random.default_rng([number, 3]).random()
    return round(float((2 * draw - 1) * MAX_MISALIGNMENT), 1)


def power_curve(
    wind_speed: np.ndarray,
    *,
    rated_power: float = RATED_POWER,
    cut_in: float = CUT_IN,
    rated_speed: float = RATED_SPEED,
    cut_out: float = CUT_OUT,
) -> np.ndarray:
    """Power (kW) of a turbine at ``wind_speed`` (m/s), without noise or hysteresis.

    Cubic from cut-in to rated speed, flat at rated power up to cut-out, zero outside.
    Curve parameters broadcast (one per turbine against a (turbines, minutes) array).
    """
    v = np.asarray(wind_speed, dtype=np.float64)
    ramp = rated_power * (v**3 - cut_in**3) / (rated_speed**3 - cut_in**3)
    power = np.where(v < rated_speed, ramp, rated_power)
    return np.where((v >= cut_in) & (v < cut_out), power, 0.0)


def wake_deficit(fleet: list[Turbine], direction: np.ndarray) -> np.ndarray:
    """Relative wind deficit of each turbine (rows) for each wind direction (columns, degrees).

    A turbine downstream of another in the direction the wind blows loses speed: Jensen's
    amplitude ``(1 - sqrt(1 - Ct)) (D / (D + 2 k x))²`` at distance ``x`` downstream, with a
    Gaussian cross-wind profile of width ``k x + D/2``; deficits of several upstream turbines
    combine as a root sum of squares, capped at MAX_DEFICIT.
    """
    theta = np.radians(np.asarray(direction, dtype=np.float64))
    # the wind blows from `direction` towards the opposite one: its unit vector (east, north)
    flow = np.stack([-np.sin(theta), -np.cos(theta)])  # (2, directions)
    position = np.array([(t.x, t.y) for t in fleet])  # (turbines, 2)
    # a few downstream turbines at a time: memory O(turbines x directions) whatever the fleet
    parts = [
        _deficit(position[at : at + WAKE_CHUNK], position, flow)
        for at in range(0, len(fleet), WAKE_CHUNK)
    ]
    return np.minimum(np.concatenate(parts), MAX_DEFICIT)


def _deficit(downstream: np.ndarray, upstream: np.ndarray, flow: np.ndarray) -> np.ndarray:
    offset = downstream[:, None, :] - upstream[None, :, :]  # (downstream i, upstream j, 2)
    along = offset @ flow  # (i, j, directions): distance downstream of j
    across2 = np.maximum((offset**2).sum(axis=-1)[..., None] - along**2, 0.0)
    behind = np.maximum(along, 0.0)
    width = WAKE_EXPANSION * behind + ROTOR_DIAMETER / 2
    amplitude = (1 - np.sqrt(1 - THRUST_COEFFICIENT)) * (
        ROTOR_DIAMETER / (ROTOR_DIAMETER + 2 * WAKE_EXPANSION * behind)
    ) ** 2
    deficit = np.where(along > 0, amplitude * np.exp(-across2 / (2 * width**2)), 0.0)
    return np.sqrt((deficit**2).sum(axis=1))
