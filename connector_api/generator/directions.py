"""Each turbine's wind vane and nacelle: the farm's wind direction as one machine sees it.

The vane reads the farm's direction with the turbine's own correlated deviation. The yaw
controller averages the vane over a few minutes (the yaw lag), aims at that direction less the
turbine's static misalignment, and moves only when the error leaves a dead band of a few degrees,
at most YAW_RATE degrees per minute: so a clean nacelle never jumps by more than the catalogue's
max_step of 30°/min, and holds exactly still between moves (no frozen rule for it).
"""

from __future__ import annotations

import numpy as np

from connector_api.generator.weather import ar1

# The vane's deviation from the farm's direction: AR(1) with ~30 min memory, plus its own noise.
DEVIATION, DEVIATION_AR, VANE_NOISE = 4.0, 0.97, 1.0  # degrees, per minute, degrees
YAW_AVERAGE = 0.3  # weight of the newest minute in the controller's average: a lag of ~3 min
DEAD_BAND = 4.0  # degrees: the controller yaws only beyond this error
YAW_RATE = 20.0  # degrees per minute: a yaw drive's ~0.3°/s
DECIMALS = 1


def wrap360(degrees: np.ndarray) -> np.ndarray:
    """Angles in ``[0, 360)`` (a rounding to 360 becomes 0)."""
    wrapped = np.mod(degrees, 360.0)
    return np.where(wrapped >= 360.0, 0.0, wrapped)


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The wrapped difference ``a - b`` in ``[-180, 180)`` degrees."""
    return np.mod(a - b + 180.0, 360.0) - 180.0


def vane(farm_direction: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Each turbine's wind direction (days, turbines, minutes) from the farm's (days, minutes).

    ``noise``: standard normals (days, turbines, 2, minutes) of the turbines' own streams.
    """
    deviation = DEVIATION * ar1(noise[:, :, 0], DEVIATION_AR) + VANE_NOISE * noise[:, :, 1]
    return wrap360(np.round(wrap360(farm_direction[:, None, :] + deviation), DECIMALS))


def nacelle(direction: np.ndarray, misalignment: np.ndarray) -> np.ndarray:
    """The nacelle position (days, turbines, minutes) following ``direction`` (same shape).

    ``misalignment``: degrees per turbine; the nacelle aims at the averaged wind direction less
    it. One step per minute, vectorised over the block's turbine-days: minute-major contiguous
    arrays and in-place ufuncs, so a step costs a few microseconds whatever the block.
    """
    days, turbines, minutes = direction.shape
    radians = np.radians(np.moveaxis(direction, -1, 0)).reshape(minutes, days * turbines)
    sin, cos = np.ascontiguousarray(np.sin(radians)), np.ascontiguousarray(np.cos(radians))
    offset = np.tile(misalignment, days)  # per (day, turbine), the order of the flat axis
    s, c = sin[0].copy(), cos[0].copy()
    position = np.degrees(np.arctan2(s, c)) - offset  # aligned at midnight; unwrapped
    aim, error = np.empty_like(s), np.empty_like(s)
    moving = np.empty(s.shape, dtype=bool)
    out = np.empty((minutes, days * turbines))
    for minute in range(minutes):
        s += YAW_AVERAGE * (sin[minute] - s)
        c += YAW_AVERAGE * (cos[minute] - c)
        np.degrees(np.arctan2(s, c, out=aim), out=aim)
        np.subtract(aim, offset, out=aim)
        np.subtract(aim, position, out=error)  # wrapped to [-180, 180) below
        error += 180.0
        np.mod(error, 360.0, out=error)
        error -= 180.0
        np.greater(np.abs(error), DEAD_BAND, out=moving)
        np.clip(error, -YAW_RATE, YAW_RATE, out=error)
        error *= moving
        position += error
        out[minute] = position
    track = np.moveaxis(out.reshape(minutes, days, turbines), 0, -1)
    return wrap360(np.round(wrap360(track), DECIMALS))
