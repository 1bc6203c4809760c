"""The physical model behind ``connector-api seed``: a wind farm's one-minute readings.

One farm-wide wind field per day (a speed process and a wind direction, seeded by
``(seed, day)``), which every turbine sees with its own correlated deviation (its own stream,
seeded by ``(seed, day, turbine)``), less the wake of the turbines upstream of it in the current
direction. Each turbine has its own power curve and its own downtime. Because every random stream
is keyed by the day (and the turbine), a minute's values depend only on the seed, its day, its
turbine and the farm: overlapping seeds agree, and a range can be re-seeded or extended without
touching what is there (insert-or-ignore).

``--faults`` corrupts a copy of those values from a third stream per (seed, day, turbine), so the
fault-free values are identical with and without faults, and records every corrupted reading
(the ground truth that QC, docs/rules.md, is measured against).

Everything is computed for a block of days x the whole fleet at once with numpy: only the random
draws (one small stream per turbine-day) and the fault injection loop in Python.
"""

from __future__ import annotations

import functools
import io
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv

from connector_api import schema
from connector_api.db import connect
from connector_api.schema import KNOWN_VARIABLES, TABLE, TURBINE_TABLE, ensure_schema, turbine_id

T = TypeVar("T")

MINUTES_PER_DAY = 1440
MINUTE_US = 60_000_000
DAY_US = MINUTES_PER_DAY * MINUTE_US
VARIABLES = ("wind_speed", "power", "ambient_temperature")
DECIMALS = {"wind_speed": 2, "power": 1, "ambient_temperature": 2}

# Farm-wide wind: Weibull k = 2 (a Rayleigh law) with scale c, built as the norm of two AR(1)
# Gaussian processes, which gives minute-to-minute persistence without an inverse CDF.
WEIBULL_SCALE = 8.0  # m/s
AR_COEFFICIENT = 0.995  # per minute: a correlation time of about 3 hours
DIURNAL_WIND_AMPLITUDE = 0.15  # relative, strongest mid-afternoon
# Wind direction (where it blows from, degrees clockwise from north): a daily mean around the
# prevailing west-south-west, wandering by a random walk.
PREVAILING_DIRECTION, DIRECTION_SPREAD, DIRECTION_STEP = 240.0, 60.0, 1.0  # degrees

# Each turbine's own deviation from the farm's speed: relative, AR(1) with ~50 min memory.
DEVIATION, DEVIATION_AR = 0.12, 0.98

# Layout: rows of ROW_LENGTH turbines, 5 rotor diameters apart along a row, 7 between rows
# (staggered), turbine 1 at the origin.
ROTOR_DIAMETER = 100.0  # m
ROW_LENGTH, ALONG_ROW, BETWEEN_ROWS = 10, 5 * ROTOR_DIAMETER, 7 * ROTOR_DIAMETER
# Wakes: a Jensen-like deficit (thrust coefficient, wake expansion) with a Gaussian cross-wind
# profile, so the deficit varies smoothly with the direction; combined as a root sum of squares.
THRUST_COEFFICIENT, WAKE_EXPANSION, MAX_DEFICIT = 0.8, 0.075, 0.5

# Machines: generic 3 MW; rated speed varies a little between turbines (turbine 1 is the
# exercise's 3/12/25 m/s machine). All rated at 3000 kW = power's physical maximum, so clipping
# at rated power sits on the bound (never a frozen run for QC).
RATED_POWER = 3000.0  # kW
CUT_IN, RATED_SPEED, CUT_OUT = 3.0, 12.0, 25.0  # m/s
RATED_SPEEDS = (12.0, 11.5, 12.5, 12.0, 11.0, 13.0)
RESTART_BELOW = 5.0  # m/s under cut-out: a stopped turbine restarts at 20 m/s (hysteresis)
POWER_NOISE = 15.0  # kW, standard deviation while producing

# Downtime: on some days a turbine stops for a few hours whatever the wind.
DOWNTIME_PROBABILITY, DOWNTIME_MINUTES = 0.1, (60, 360)

# Temperature: seasonal and daily cycles around a mild mean, plus a daily weather offset.
MEAN_TEMPERATURE, SEASONAL_AMPLITUDE, DIURNAL_AMPLITUDE = 10.0, 9.0, 4.0  # °C

# Faults per turbine-day when asked for; each takes its own hour of the day, keeping two clean
# minutes from the hour's edges, so no two faults touch and the ground truth is unambiguous.
GAPS, NULL_RUNS, FROZEN_RUNS, OUT_OF_RANGE, SPIKES = 2, 2, 2, 3, 3
OUT_OF_RANGE_VALUES = {"wind_speed": 99.0, "power": -500.0, "ambient_temperature": -99.0}
SPIKE_MARGIN = 1.25  # an in-range spike jumps 1.25 x max_step beyond both neighbours
FAULTS = ("gap", "null", "frozen", "out_of_range", "spike")

# Rows per generated block (about 15 MB of CSV per COPY), whatever the fleet.
BLOCK_ROWS = 250_000


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


@dataclass(frozen=True)
class SeedReport:
    """What a seed run wrote: the range (end exclusive, UTC), fleet, rows and time taken."""

    start: datetime
    end: datetime
    turbines: int
    rows_generated: int
    rows_written: int
    seconds: float
    faults_logged: int = 0


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


WAKE_CHUNK = 16


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


def _ar1(noise: np.ndarray, coefficient: float) -> np.ndarray:
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
    x, y = _ar1(noise[:, 0], AR_COEFFICIENT), _ar1(noise[:, 1], AR_COEFFICIENT)
    diurnal = 1.0 + DIURNAL_WIND_AMPLITUDE * _AFTERNOON
    speed = WEIBULL_SCALE / np.sqrt(2.0) * np.hypot(x, y) * diurnal
    direction = (
        PREVAILING_DIRECTION
        + DIRECTION_SPREAD * scalars[:, :1]
        + np.cumsum(DIRECTION_STEP * noise[:, 2], axis=-1)
    )
    return speed, np.mod(direction, 360.0), 2.0 * scalars[:, 1]


_HOURS = np.arange(MINUTES_PER_DAY) / 60.0
_AFTERNOON = np.sin(2 * np.pi * (_HOURS - 9.0) / 24.0)  # peaks at 15:00


@dataclass
class _Block:
    """Fault-free (then faulty) readings of days x turbines: arrays (days, turbines, minutes)."""

    days: list[date]
    values: dict[str, np.ndarray]
    keep: np.ndarray | None = None  # False where a gap removes the row
    faults: list[tuple[int, int, int, str | None, str]] | None = None  # day, turbine, minute, …


class _Model:
    """The farm's precomputed parts: curves, the wake per degree of direction."""

    def __init__(self, fleet: list[Turbine]) -> None:
        self.fleet = fleet
        self.numbers = [int(t.id[3:]) for t in fleet]

        def column(name: str) -> np.ndarray:
            return np.array([getattr(t, name) for t in fleet])[:, None]

        self.curve = {name: column(name) for name in ("rated_power", "cut_in", "rated_speed")}
        self.cut_out = column("cut_out")
        self.wake_table = wake_deficit(fleet, np.arange(361.0))  # (turbines, 361), 1° steps

    def wake(self, direction: np.ndarray) -> np.ndarray:
        """Deficit (turbines, days, minutes) for directions (days, minutes), interpolated."""
        d = np.mod(direction, 360.0)
        low = np.floor(d).astype(np.intp)
        frac = d - low
        table = self.wake_table
        return table[:, low] * (1 - frac) + table[:, low + 1] * frac  # (turbines, days, minutes)

    def block(self, seed: int, days: list[date]) -> _Block:
        n_days, n_turbines = len(days), len(self.fleet)
        speed, direction, weather = farm_wind(seed, days)
        own = np.empty((n_days, n_turbines, 3, MINUTES_PER_DAY))
        own_scalars = np.empty((n_days, n_turbines, 4))
        for i, day in enumerate(days):
            for j, number in enumerate(self.numbers):
                rng = np.random.default_rng([seed, day.toordinal(), number])
                own[i, j] = rng.standard_normal((3, MINUTES_PER_DAY))
                own_scalars[i, j] = rng.random(4)

        # each turbine's view of the farm's wind
        deviation = 1.0 + DEVIATION * _ar1(own[:, :, 0], DEVIATION_AR)
        wake = np.moveaxis(self.wake(direction), 0, 1)  # (days, turbines, minutes)
        wind = np.maximum(speed[:, None, :] * deviation * (1.0 - wake), 0.0)
        wind = np.round(wind, DECIMALS["wind_speed"])

        power = self._power(wind, own[:, :, 1], own_scalars)

        season = np.array(
            [-np.cos(2 * np.pi * (day.timetuple().tm_yday - 20) / 365.25) for day in days]
        )  # coldest ~20 Jan
        base = (
            MEAN_TEMPERATURE
            + SEASONAL_AMPLITUDE * season[:, None]
            + weather[:, None]
            + DIURNAL_AMPLITUDE * _AFTERNOON
        )
        temperature = base[:, None, :] + 0.2 * own[:, :, 2] + (own_scalars[:, :, 3:4] - 0.5)
        values = {
            "wind_speed": wind,
            "power": np.round(power, DECIMALS["power"]),
            "ambient_temperature": np.round(temperature, DECIMALS["ambient_temperature"]),
        }
        return _Block(days=days, values=values)

    def _power(self, wind: np.ndarray, noise: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        """Each turbine's curve, with cut-out hysteresis, noise while producing, and downtime."""
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
        # downtime: a few hours on some days
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
def _model(turbines: int) -> _Model:
    """The farm's model, built once per fleet size (live mode asks for it every minute)."""
    return _Model(farm(turbines))


def _inject_faults(seed: int, model: _Model, block: _Block) -> None:
    """Corrupt the block in place, one turbine-day at a time; record every corrupted reading."""
    keep = np.ones(block.values["wind_speed"].shape, dtype=bool)
    faults: list[tuple[int, int, int, str | None, str]] = []
    for i, day in enumerate(block.days):
        for j, number in enumerate(model.numbers):
            rng = np.random.default_rng([seed, day.toordinal(), number, 1])
            series = {name: block.values[name][i, j] for name in VARIABLES}
            for minute, name, kind in _corrupt(rng, series, keep[i, j]):
                faults.append((i, j, minute, name, kind))
    block.keep, block.faults = keep, faults


def _corrupt(rng: np.random.Generator, series: dict[str, np.ndarray], keep: np.ndarray):
    """The faults of one turbine-day, each in its own hour; yields (minute, variable, kind)."""
    kinds = ("gap",) * GAPS + ("null",) * NULL_RUNS + ("frozen",) * FROZEN_RUNS
    kinds += ("out_of_range",) * OUT_OF_RANGE + ("spike",) * SPIKES
    hours = rng.permutation(24)[: len(kinds)]
    for hour, kind in zip(hours.tolist(), kinds, strict=True):
        first, last = hour * 60 + 2, hour * 60 + 58  # usable minutes: [first, last)
        if kind == "gap":
            at = int(rng.integers(first, last - 1))
            length = int(rng.integers(1, last - at + 1))
            keep[at : at + length] = False
            yield from ((m, None, "gap") for m in range(at, at + length))
        elif kind == "null":
            names = [VARIABLES[rng.integers(len(VARIABLES))]] if rng.random() < 0.7 else VARIABLES
            at = int(rng.integers(first, last - 5))
            length = int(rng.integers(5, last - at + 1))
            for name in names:
                series[name][at : at + length] = np.nan
                yield from ((m, name, "null") for m in range(at, at + length))
        elif kind == "frozen":
            yield from _freeze(rng, series, first, last)
        elif kind == "out_of_range":
            name = VARIABLES[rng.integers(len(VARIABLES))]
            at = int(rng.integers(first, last))
            series[name][at] = OUT_OF_RANGE_VALUES[name]
            yield at, name, "out_of_range"
        else:
            yield from _spike(rng, series, first, last)


def _freeze(rng: np.random.Generator, series: dict[str, np.ndarray], first: int, last: int):
    """A stuck sensor: a value strictly inside the range repeated for 10 or more minutes.

    The run is exactly what QC will see: the readings just before and after it differ from the
    frozen value (a neighbour that happened to be equal would lengthen the run).
    """
    at = int(rng.integers(first + 1, last - 30))
    length = int(rng.integers(10, last - at - 1))
    inside = [n for n in VARIABLES if _strictly_inside(n, series[n][at])]
    name = inside[rng.integers(len(inside))]
    values = series[name]
    while values[at - 1] == values[at] and length > 10:  # start where the value changes
        at, length = at + 1, length - 1
    frozen = values[at]
    end = at + length
    while end < last and values[end] == frozen:
        end += 1
    if values[at - 1] == frozen or values[end] == frozen or not _strictly_inside(name, frozen):
        return  # no clean place this hour (never seen; keeps the truth exact)
    values[at:end] = frozen
    yield from ((m, name, "frozen") for m in range(at, end))


def _spike(rng: np.random.Generator, series: dict[str, np.ndarray], first: int, last: int):
    """One reading jumping beyond ``max_step`` from both neighbours (same side), still in range."""
    for _ in range(20):
        name = VARIABLES[rng.integers(len(VARIABLES))]
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


def _strictly_inside(name: str, value: float) -> bool:
    limits = KNOWN_VARIABLES[name]
    return bool(limits.physical_min < value < limits.physical_max)


def _day_blocks(start: datetime, end: datetime, turbines: int) -> Iterator[list[date]]:
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    per_block = max(1, BLOCK_ROWS // (turbines * MINUTES_PER_DAY))
    ordinals = range(first.toordinal(), last.toordinal() + 1)
    for at in range(0, len(ordinals), per_block):
        yield [date.fromordinal(o) for o in ordinals[at : at + per_block]]


def _us(moment: datetime) -> int:
    return (moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _table(model: _Model, block: _Block, start: datetime, end: datetime) -> pa.Table:
    """The block as rows ordered by (turbine_id, timestamp), cut to [start, end), gaps removed."""
    n_days, n_turbines = len(block.days), len(model.fleet)
    day_us = np.array([_us(datetime(d.year, d.month, d.day, tzinfo=UTC)) for d in block.days])
    stamps = day_us[:, None] + np.arange(MINUTES_PER_DAY) * MINUTE_US  # (days, minutes)
    stamps = np.broadcast_to(stamps[None], (n_turbines, n_days, MINUTES_PER_DAY))
    select = (stamps >= _us(start)) & (stamps < _us(end))
    if block.keep is not None:
        select = select & np.moveaxis(block.keep, 1, 0)
    index = np.broadcast_to(np.arange(n_turbines, dtype=np.int32)[:, None, None], select.shape)[
        select
    ]
    columns = {
        schema.TURBINE_COLUMN: pa.DictionaryArray.from_arrays(
            pa.array(index), pa.array([t.id for t in model.fleet])
        ),
        schema.TIME_COLUMN: pa.array(stamps[select], type=pa.timestamp("us", tz="UTC")),
    }
    for name in VARIABLES:
        # (days, turbines, minutes) -> (turbines, days, minutes): turbine-major rows
        values = np.moveaxis(block.values[name], 1, 0)[select]
        columns[name] = pa.array(values, mask=np.isnan(values))
    return pa.table(columns)


def _log_table(model: _Model, block: _Block, start: datetime, end: datetime) -> pa.Table:
    rows = block.faults or []
    day_us = np.array([_us(datetime(d.year, d.month, d.day, tzinfo=UTC)) for d in block.days])
    stamps = np.array([day_us[i] + m * MINUTE_US for i, _, m, _, _ in rows], dtype=np.int64)
    table = pa.table(
        {
            schema.TURBINE_COLUMN: pa.array([model.fleet[j].id for _, j, _, _, _ in rows]),
            schema.TIME_COLUMN: pa.array(stamps, type=pa.timestamp("us", tz="UTC")),
            "variable": pa.array([name for _, _, _, name, _ in rows], type=pa.string()),
            "fault": pa.array([kind for _, _, _, _, kind in rows], type=pa.string()),
        }
    )
    inside = (stamps >= _us(start)) & (stamps < _us(end))
    return table.filter(pa.array(inside)).sort_by(
        [(schema.TURBINE_COLUMN, "ascending"), (schema.TIME_COLUMN, "ascending")]
    )


def generate_blocks(
    start: datetime, end: datetime, *, seed: int = 42, turbines: int = 1, faults: bool = False
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    """Readings of ``[start, end)`` in blocks of days: (rows, fault log or None) per block.

    Rows: ``turbine_id`` (dictionary), ``timestamp`` (UTC), one float64 per variable (NULL where
    a reading is missing); gap minutes have no row. Ordered by (turbine_id, timestamp) per block.
    """
    model = _model(turbines)
    for days in _day_blocks(start, end, turbines):
        block = model.block(seed, days)
        if faults:
            _inject_faults(seed, model, block)
        rows = _table(model, block, start, end)
        yield rows, _log_table(model, block, start, end) if faults else None


def generate(
    start: datetime, end: datetime, *, seed: int = 42, turbines: int = 1, faults: bool = False
) -> pa.Table:
    """All readings of ``[start, end)`` as one table (for tests and small ranges)."""
    tables = [
        rows for rows, _ in generate_blocks(start, end, seed=seed, turbines=turbines, faults=faults)
    ]
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()


def fault_log(
    start: datetime | date, end: datetime | date, *, seed: int = 42, turbines: int = 1
) -> pa.Table:
    """The ground truth of ``--faults`` over ``[start, end)``: one row per corrupted reading.

    Columns ``turbine_id, timestamp, variable, fault`` (variable NULL for a gap, whose row is
    absent), sorted by (turbine_id, timestamp).
    """
    first, last = (_as_datetime(t) for t in (start, end))
    logs = [
        faults
        for _, faults in generate_blocks(first, last, seed=seed, turbines=turbines, faults=True)
    ]
    return pa.concat_tables(logs).sort_by(
        [(schema.TURBINE_COLUMN, "ascending"), (schema.TIME_COLUMN, "ascending")]
    )


def _as_datetime(moment: datetime | date) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return _midnight(moment)


def to_csv(rows: pa.Table) -> bytes:
    """The rows as COPY-ready CSV (no header, empty field = NULL), built in C by pyarrow.

    Timestamps are written without an offset: load them in a session whose TimeZone is UTC.
    """
    naive = rows.set_column(
        1, schema.TIME_COLUMN, rows.column(1).cast(pa.timestamp("s"))
    )  # pyarrow formats a time-zoned timestamp 20x slower; the COPY session is UTC
    sink = io.BytesIO()
    pyarrow.csv.write_csv(
        naive, sink, pyarrow.csv.WriteOptions(include_header=False, quoting_style="none")
    )
    return sink.getvalue()


def write_faults_csv(table: pa.Table, sink, *, header: bool = True) -> None:
    """The fault log as CSV (``turbine_id,timestamp,variable,fault``), timestamps ISO UTC ``Z``.

    A gap's variable is an empty field.
    """
    seconds = table.column(1).cast(pa.timestamp("s", tz="UTC"))
    stamps = pyarrow.compute.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
    if header:  # pyarrow would quote the names
        sink.write((",".join(table.column_names) + "\n").encode())
    pyarrow.csv.write_csv(
        table.set_column(1, schema.TIME_COLUMN, stamps),
        sink,
        pyarrow.csv.WriteOptions(include_header=False, quoting_style="none"),
    )


def resolve_range(
    start: date | None, days: int, end: date | None, *, today: date | None = None
) -> tuple[datetime, datetime]:
    """The UTC range ``[start, end)`` of whole days; by default the ``days`` days before today."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if start is None:
        start = (end or today or datetime.now(UTC).date()) - timedelta(days=days)
    if end is None:
        end = start + timedelta(days=days)
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    return _midnight(start), _midnight(end)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


COLUMNS = (schema.TURBINE_COLUMN, schema.TIME_COLUMN, *VARIABLES)
_COLUMN_LIST = ", ".join(f'"{name}"' for name in COLUMNS)
COPY_SQL = f"COPY {TABLE} ({_COLUMN_LIST}) FROM STDIN (FORMAT csv)"


def write(
    database_url: str,
    start: datetime,
    end: datetime,
    *,
    seed: int = 42,
    turbines: int = 1,
    faults: bool = False,
    replace: bool = False,
    faults_log=None,
    if_empty: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Generate ``[start, end)`` for the fleet and write it in one transaction.

    Insert-or-ignore, or ``replace`` the fleet's rows of the range; with ``if_empty`` nothing is
    written when ``data`` already has a row. Generated and copied block by block, so memory
    stays bounded however long the range and large the fleet. ``faults_log`` (a binary file)
    receives the ground truth as CSV.
    """
    began = time.perf_counter()
    fleet = farm(turbines)
    conn = connect(database_url)
    generated = written = logged = 0
    header_written = False
    done, blocks = 0, sum(1 for _ in _day_blocks(start, end, turbines))
    try:
        with conn, conn.cursor() as cur:
            target = _prepare(cur, fleet, start, end, replace=replace, if_empty=if_empty)
            if target is not None:
                copy = COPY_SQL.replace(TABLE, target, 1)
                formatted = (
                    (to_csv(rows), rows.num_rows, log_rows)
                    for rows, log_rows in generate_blocks(
                        start, end, seed=seed, turbines=turbines, faults=faults
                    )
                )
                for payload, count, log_rows in _one_ahead(formatted):
                    cur.copy_expert(copy, io.BytesIO(payload), size=COPY_CHUNK)
                    generated += count
                    if faults_log is not None and log_rows is not None:
                        write_faults_csv(log_rows, faults_log, header=not header_written)
                        header_written = True
                        logged += log_rows.num_rows
                    done += 1
                    if progress and blocks > 1:
                        progress(
                            f"block {done}/{blocks}: {generated:,} rows copied"
                            f" ({time.perf_counter() - began:.1f} s)"
                        )
                written = generated if target == TABLE else _insert_new(cur)
    finally:
        conn.close()
    return SeedReport(
        start=start,
        end=end,
        turbines=turbines,
        rows_generated=generated,
        rows_written=written,
        seconds=time.perf_counter() - began,
        faults_logged=logged,
    )


COPY_CHUNK = 1 << 20  # bytes handed to libpq per call


def _one_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items`` produced in a thread, one ahead of the consumer.

    The next block is generated and formatted (numpy and pyarrow release the GIL) while
    PostgreSQL digests the current COPY, so the seed costs little more than the COPY itself.
    """
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((False, error))

    thread = threading.Thread(target=produce, name="seed-generate", daemon=True)
    thread.start()
    try:
        while True:
            more, item = handoff.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _prepare(
    cur, fleet: list[Turbine], start: datetime, end: datetime, *, replace: bool, if_empty: bool
) -> str | None:
    """Where to COPY: the table when the fleet's range is empty, else a temporary table; None
    when ``if_empty`` finds rows.

    The lock keeps concurrent seeders from filling the range between the check and the COPY;
    plain reads (the API) are not blocked by it.
    """
    ensure_schema(cur)
    cur.execute("SET LOCAL TimeZone = 'UTC'")  # the CSV's timestamps are naive UTC
    cur.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
    if if_empty:
        cur.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE})")
        if cur.fetchone()[0]:
            return None
    columns = ", ".join(("id", *schema.TURBINE_PROPERTIES))
    cur.executemany(
        f"INSERT INTO {TURBINE_TABLE} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO NOTHING",
        [(t.id, t.rated_power, t.cut_in, t.rated_speed, t.cut_out, t.x, t.y) for t in fleet],
    )
    ids = [t.id for t in fleet]
    in_range = (
        f'{TABLE} WHERE {schema.TURBINE_COLUMN} = ANY(%s) AND "timestamp" >= %s'
        ' AND "timestamp" < %s'
    )
    if replace:
        cur.execute(f"DELETE FROM {in_range}", (ids, start, end))
        return TABLE
    cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {in_range})", (ids, start, end))
    if cur.fetchone()[0]:
        return TABLE
    cur.execute(f"CREATE TEMP TABLE incoming (LIKE {TABLE}) ON COMMIT DROP")
    return "incoming"


def _insert_new(cur) -> int:
    """Insert-or-ignore from the temporary table; the number of rows actually inserted."""
    cur.execute(
        f"INSERT INTO {TABLE} ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM incoming"
        f' ON CONFLICT ({schema.TURBINE_COLUMN}, "timestamp") DO NOTHING'
    )
    return cur.rowcount


def seed(
    database_url: str,
    *,
    start: date | None = None,
    days: int = 10,
    end: date | None = None,
    seed: int = 42,
    turbines: int = 1,
    faults: bool = False,
    faults_log=None,
    replace: bool = False,
    if_empty: bool = False,
) -> SeedReport:
    """Seed whole days ``[start, end)`` (or ``days`` from ``start``) for a fleet of ``turbines``.

    Creates (or upgrades) the schema; never duplicates rows (insert-or-ignore), or overwrites the
    fleet's range with ``replace=True``. ``faults_log``: a path or binary file for the CSV truth.
    """
    first, last = resolve_range(start, days, end)
    options = dict(seed=seed, turbines=turbines, faults=faults, replace=replace, if_empty=if_empty)
    if faults_log is None or hasattr(faults_log, "write"):
        return write(database_url, first, last, faults_log=faults_log, **options)
    with open(faults_log, "wb") as sink:
        return write(database_url, first, last, faults_log=sink, **options)
