"""The farm-wide weather of a day: one wind field (speed and direction) and a temperature.

Seeded by ``(seed, day)`` only, so every turbine of every fleet sees the same field.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from connector_api.calendar import MINUTES_PER_DAY

# Farm-wide wind: Weibull k = 2 (a Rayleigh law) with scale c, built as the norm of two AR(1)
# Gaussian processes, which gives minute-to-minute persistence without an inverse CDF.
WEIBULL_SCALE = 8.0  # m/s
AR_COEFFICIENT = 0.995  # per minute: a correlation time of about 3 hours
DIURNAL_WIND_AMPLITUDE = 0.15  # relative, strongest mid-afternoon
# Wind direction (where it blows from, degrees clockwise from north): a daily mean around the
# prevailing west-south-west, wandering by a random walk.
PREVAILING_DIRECTION, DIRECTION_SPREAD, DIRECTION_STEP = 240.0, 60.0, 1.0  # degrees

# Temperature: seasonal and daily cycles around a mild mean, plus a daily weather offset.
MEAN_TEMPERATURE, SEASONAL_AMPLITUDE, DIURNAL_AMPLITUDE = 10.0, 9.0, 4.0  # °C

_HOURS = np.arange(MINUTES_PER_DAY) / 60.0
AFTERNOON = np.sin(2 * np.pi * (_HOURS - 9.0) / 24.0)  # the daily cycle, peaks at 15:00


def ar1(noise: np.ndarray, coefficient: float) -> np.ndarray:
    """Stationary AR(1) paths of a standard normal along the last axis, from white ``noise``.

    ``x_t = a^t (x_0 + sum_{s<=t} a^-s e_s)``: exact, and stable while ``a^-1440`` stays far
    from overflow (a ≥ 0.98 gives ≤ 4e12).
    """
    innovations = noise * np.sqrt(1 - coefficient**2)
    innovations[..., 0] = noise[..., 0]
    powers = coefficient ** np.arange(noise.shape[-1])
    return np.cumsum(innovations / powers, axis=-1) * powers


def farm_wind(seed: int, days: list[date]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The farm-wide wind of each day: speed (m/s) and direction (degrees, where the wind comes
    from) per minute, shape (days, minutes), and the day's temperature offset (°C) per day.

    Seeded by ``(seed, day)`` only: every turbine of every fleet sees the same field.
    """
    noise = np.empty((len(days), 3, MINUTES_PER_DAY))
    scalars = np.empty((len(days), 2))
    for i, day in enumerate(days):
        rng = np.random.default_rng([seed, day.toordinal()])
        noise[i] = rng.standard_normal((3, MINUTES_PER_DAY))
        scalars[i] = rng.standard_normal(2)
    x, y = ar1(noise[:, 0], AR_COEFFICIENT), ar1(noise[:, 1], AR_COEFFICIENT)
    diurnal = 1.0 + DIURNAL_WIND_AMPLITUDE * AFTERNOON
    speed = WEIBULL_SCALE / np.sqrt(2.0) * np.hypot(x, y) * diurnal
    direction = (
        PREVAILING_DIRECTION
        + DIRECTION_SPREAD * scalars[:, :1]
        + np.cumsum(DIRECTION_STEP * noise[:, 2], axis=-1)
    )
    return speed, np.mod(direction, 360.0), 2.0 * scalars[:, 1]


def temperature_base(days: list[date], weather: np.ndarray) -> np.ndarray:
    """The farm's air temperature (°C) per day and minute: season, weather offset, daily cycle."""
    season = np.array(
        [-np.cos(2 * np.pi * (day.timetuple().tm_yday - 20) / 365.25) for day in days]
    )  # coldest ~20 Jan
    return (
        MEAN_TEMPERATURE
        + SEASONAL_AMPLITUDE * season[:, None]
        + weather[:, None]
        + DIURNAL_AMPLITUDE * AFTERNOON
    )
