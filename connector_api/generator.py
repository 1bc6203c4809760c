"""The physical model behind ``connector-api seed``: plausible one-minute turbine readings.

Every day is generated from its own random stream, seeded by ``(seed, day ordinal)``, so a
minute's values depend only on the seed and its day: overlapping seeds agree, and a range can be
re-seeded or extended without touching what is there (insert-or-ignore).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.csv

from connector_api.db import connect
from connector_api.schema import FIRST_TURBINE, TABLE, ensure_schema

MINUTES_PER_DAY = 1440
_MINUTE = np.timedelta64(1, "m")

# Wind: Weibull k = 2 (a Rayleigh law) with scale c, built as the norm of two AR(1) Gaussian
# processes, which gives minute-to-minute persistence without an inverse CDF.
WEIBULL_SCALE = 8.0  # m/s
AR_COEFFICIENT = 0.995  # per minute: a correlation time of about 3 hours
DIURNAL_WIND_AMPLITUDE = 0.15  # relative, strongest mid-afternoon

# A generic 3 MW turbine.
RATED_POWER = 3000.0  # kW
CUT_IN, RATED_SPEED, CUT_OUT = 3.0, 12.0, 25.0  # m/s
POWER_NOISE = 15.0  # kW, standard deviation while producing

# Temperature: seasonal and daily cycles around a mild mean, plus a daily weather offset.
MEAN_TEMPERATURE, SEASONAL_AMPLITUDE, DIURNAL_AMPLITUDE = 10.0, 9.0, 4.0  # °C

# Faults per day when asked for; each takes its own hour of the day so they never overlap.
GAPS, NULL_RUNS, FROZEN_RUNS, SPIKES = 2, 2, 2, 3
SPIKE_VALUES = {"wind_speed": 99.0, "power": -500.0, "ambient_temperature": -99.0}
VARIABLES = ("wind_speed", "power", "ambient_temperature")


@dataclass(frozen=True)
class SeedReport:
    """What a seed run wrote: the range (end exclusive, UTC), rows inserted and time taken."""

    start: datetime
    end: datetime
    rows_generated: int
    rows_written: int
    seconds: float


def power_curve(wind_speed: np.ndarray) -> np.ndarray:
    """Power (kW) of the 3 MW turbine at ``wind_speed`` (m/s), without noise.

    Cubic from cut-in to rated speed, flat at rated power up to cut-out, zero outside.
    """
    v = np.asarray(wind_speed, dtype=np.float64)
    ramp = RATED_POWER * (v**3 - CUT_IN**3) / (RATED_SPEED**3 - CUT_IN**3)
    power = np.where(v < RATED_SPEED, ramp, RATED_POWER)
    return np.where((v >= CUT_IN) & (v < CUT_OUT), power, 0.0)


def _ar1(rng: np.random.Generator, days: int) -> np.ndarray:
    """``days`` independent stationary AR(1) paths of a standard normal, one row per day."""
    noise = rng.standard_normal((days, MINUTES_PER_DAY)) * np.sqrt(1 - AR_COEFFICIENT**2)
    noise[:, 0] = rng.standard_normal(days)
    # x_t = a^t (x_0 + sum_{s<=t} a^-s e_s): exact, and stable for a^-1440 ≈ 1.4e3.
    powers = AR_COEFFICIENT ** np.arange(MINUTES_PER_DAY)
    return np.cumsum(noise / powers, axis=1) * powers


def _day_values(seed: int, day: date) -> dict[str, np.ndarray]:
    """The fault-free readings of one day: one value per minute and variable."""
    rng = np.random.default_rng([seed, day.toordinal()])
    hours = np.arange(MINUTES_PER_DAY) / 60.0
    afternoon = np.sin(2 * np.pi * (hours - 9.0) / 24.0)  # peaks at 15:00
    x, y = _ar1(rng, 2)
    diurnal = 1.0 + DIURNAL_WIND_AMPLITUDE * afternoon
    wind = WEIBULL_SCALE / np.sqrt(2.0) * np.hypot(x, y) * diurnal
    producing = power_curve(wind)
    noise = rng.normal(0.0, POWER_NOISE, MINUTES_PER_DAY) * (producing > 0)
    power = np.clip(producing + noise, 0.0, RATED_POWER)
    season = -np.cos(2 * np.pi * (day.timetuple().tm_yday - 20) / 365.25)  # coldest ~20 Jan
    weather = rng.normal(0.0, 2.0)
    temperature = (
        MEAN_TEMPERATURE
        + SEASONAL_AMPLITUDE * season
        + DIURNAL_AMPLITUDE * afternoon
        + weather
        + rng.normal(0.0, 0.2, MINUTES_PER_DAY)
    )
    return {
        "wind_speed": np.round(wind, 2),
        "power": np.round(power, 1),
        "ambient_temperature": np.round(temperature, 2),
    }


def _inject_faults(seed: int, day: date, values: dict[str, np.ndarray]) -> np.ndarray:
    """Frozen runs, spikes and NULL runs in place; returns the mask of rows to keep (gaps).

    A separate random stream, so the fault-free values stay the same with or without faults.
    """
    rng = np.random.default_rng([seed, day.toordinal(), 1])
    hours = rng.permutation(24)[: GAPS + NULL_RUNS + FROZEN_RUNS + SPIKES] * 60
    gap_hours, null_hours, frozen_hours, spike_hours = np.split(
        hours, np.cumsum([GAPS, NULL_RUNS, FROZEN_RUNS])
    )
    for at in frozen_hours:
        name = VARIABLES[rng.integers(len(VARIABLES))]
        length = rng.integers(10, 61)
        values[name][at : at + length] = values[name][at]
    for at in spike_hours:
        name = VARIABLES[rng.integers(len(VARIABLES))]
        values[name][at + rng.integers(60)] = SPIKE_VALUES[name]
    for at in null_hours:
        names = [VARIABLES[rng.integers(len(VARIABLES))]] if rng.random() < 0.7 else VARIABLES
        length = rng.integers(5, 61)
        for name in names:
            values[name][at : at + length] = np.nan
    keep = np.ones(MINUTES_PER_DAY, dtype=bool)
    for at in gap_hours:
        keep[at : at + rng.integers(1, 61)] = False
    return keep


def generate(
    start: datetime, end: datetime, *, seed: int = 42, faults: bool = False
) -> dict[str, np.ndarray]:
    """Readings for the minutes in ``[start, end)`` (UTC): ``timestamp`` and one array per variable.

    Values are NaN where a reading is missing; gap minutes have no row at all.
    """
    first_day = start.astimezone(UTC).date()
    last_day = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    columns: dict[str, list[np.ndarray]] = {name: [] for name in ("timestamp", *VARIABLES)}
    for ordinal in range(first_day.toordinal(), last_day.toordinal() + 1):
        day = date.fromordinal(ordinal)
        values = _day_values(seed, day)
        keep = _inject_faults(seed, day, values) if faults else slice(None)
        minutes = np.datetime64(day, "m") + np.arange(MINUTES_PER_DAY) * _MINUTE
        columns["timestamp"].append(minutes[keep])
        for name in VARIABLES:
            columns[name].append(values[name][keep])
    joined = {name: np.concatenate(parts) for name, parts in columns.items()}
    lo, hi = (np.datetime64(t.astimezone(UTC).replace(tzinfo=None), "us") for t in (start, end))
    inside = (joined["timestamp"] >= lo) & (joined["timestamp"] < hi)
    return {name: array[inside] for name, array in joined.items()}


def to_csv(readings: dict[str, np.ndarray]) -> bytes:
    """The readings as COPY-ready CSV (no header, empty field = NULL), built in C by pyarrow.

    Timestamps are written without an offset: load them in a session whose TimeZone is UTC.
    """
    table = pa.table(
        {
            "turbine_id": pa.array([FIRST_TURBINE] * len(readings["timestamp"])),
            # naive UTC: pyarrow formats a time-zoned timestamp 20x slower; the COPY session is UTC
            "timestamp": pa.array(readings["timestamp"].astype("datetime64[us]")),
            **{name: pa.array(readings[name], from_pandas=True) for name in VARIABLES},
        }
    )
    sink = io.BytesIO()
    pyarrow.csv.write_csv(
        table, sink, pyarrow.csv.WriteOptions(include_header=False, quoting_style="none")
    )
    return sink.getvalue()


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


def write(
    database_url: str,
    start: datetime,
    end: datetime,
    *,
    seed: int = 42,
    faults: bool = False,
    replace: bool = False,
) -> SeedReport:
    """Generate ``[start, end)`` and write it in one transaction: insert-or-ignore, or replace.

    Generated and copied block by block, so memory stays bounded however long the range.
    """
    began = time.perf_counter()
    conn = connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            target = _prepare(cur, start, end, replace=replace)
            generated = 0
            for block_start, block_end in _blocks(start, end):
                readings = generate(block_start, block_end, seed=seed, faults=faults)
                generated += len(readings["timestamp"])
                cur.copy_expert(_COPY.format(target, _COLUMNS), io.BytesIO(to_csv(readings)))
            written = generated if target == TABLE else _insert_new(cur)
    finally:
        conn.close()
    return SeedReport(
        start=start,
        end=end,
        rows_generated=generated,
        rows_written=written,
        seconds=time.perf_counter() - began,
    )


BLOCK = timedelta(days=92)  # about 130k rows, ~6 MB of CSV, per COPY
_COLUMNS = 'turbine_id, "timestamp", ' + ", ".join(VARIABLES)
_COPY = "COPY {} ({}) FROM STDIN (FORMAT csv)"


def _blocks(start: datetime, end: datetime):
    while start < end:
        yield start, min(start + BLOCK, end)
        start += BLOCK


def _prepare(cur, start: datetime, end: datetime, *, replace: bool) -> str:
    """Where to COPY: straight into the table when the range is empty, else a temporary table.

    The lock keeps concurrent seeders from filling the range between the check and the COPY;
    plain reads (the API) are not blocked by it.
    """
    ensure_schema(cur)
    cur.execute(
        "INSERT INTO turbine (id, rated_power, cut_in, rated_speed, cut_out, x, y)"
        " VALUES (%s, 3000, 3, 12, 25, 0, 0) ON CONFLICT (id) DO NOTHING",
        (FIRST_TURBINE,),
    )
    cur.execute("SET LOCAL TimeZone = 'UTC'")  # the CSV's timestamps are naive UTC
    cur.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
    in_range = f'{TABLE} WHERE "timestamp" >= %s AND "timestamp" < %s'
    if replace:
        cur.execute(f"DELETE FROM {in_range}", (start, end))
        return TABLE
    cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {in_range})", (start, end))
    if cur.fetchone()[0]:
        return TABLE
    cur.execute(f"CREATE TEMP TABLE incoming (LIKE {TABLE}) ON COMMIT DROP")
    return "incoming"


def _insert_new(cur) -> int:
    """Insert-or-ignore from the temporary table; the number of rows actually inserted."""
    cur.execute(
        f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT {_COLUMNS} FROM incoming"
        ' ON CONFLICT (turbine_id, "timestamp") DO NOTHING'
    )
    return cur.rowcount


def seed(
    database_url: str,
    *,
    start: date | None = None,
    days: int = 10,
    end: date | None = None,
    seed: int = 42,
    faults: bool = False,
    replace: bool = False,
) -> SeedReport:
    """Seed whole days ``[start, end)`` (or ``days`` from ``start``) into the source table.

    Creates the table if missing; never duplicates rows (insert-or-ignore), or overwrites the
    range with ``replace=True``.
    """
    first, last = resolve_range(start, days, end)
    return write(database_url, first, last, seed=seed, faults=faults, replace=replace)
