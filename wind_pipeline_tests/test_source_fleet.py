"""The source as a fleet: the upgrade of a previous release, the farm's physics, and the faults'
ground truth checked reading by reading against the README's quality rules (written here again
with numpy, reading each variable's rules from the catalogue: bounds, kind, frozen rule)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from connector_api import db, generator, schema
from connector_api.schema import KNOWN_VARIABLES
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.source import seed

MINUTES = 1440
VARIABLES = generator.VARIABLES


def utc(day, minutes: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes)


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(db.libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


# ---------------------------------------------------------------------------------------------
# Readings as a grid: (turbine, minute since the first day) -> value, NaN where NULL or absent


def grid(rows: list[tuple] | pa.Table, ids: list[str], days: int) -> tuple[dict, np.ndarray]:
    """Values per variable as arrays (turbines, days * 1440), and the mask of present rows."""
    if not isinstance(rows, pa.Table):
        columns = list(zip(*rows, strict=True)) or [[] for _ in generator.COLUMNS]
        rows = pa.table(
            {
                "turbine_id": pa.array(columns[0], pa.string()),
                "timestamp": pa.array(columns[1], pa.timestamp("us", tz="UTC")),
                **{
                    n: pa.array(c, pa.float64())
                    for n, c in zip(VARIABLES, columns[2:], strict=True)
                },
            }
        )
    names = rows.column("turbine_id").cast(pa.string())
    turbine = pc.index_in(names, value_set=pa.array(ids)).to_numpy(zero_copy_only=False)
    stamps = rows.column("timestamp").cast(pa.int64()).to_numpy()
    minute = (stamps - int(utc(DAY).timestamp() * 1e6)) // 60_000_000
    present = np.zeros((len(ids), days * MINUTES), dtype=bool)
    present[turbine, minute] = True
    values = {}
    for name in VARIABLES:
        values[name] = np.full((len(ids), days * MINUTES), np.nan)
        values[name][turbine, minute] = rows.column(name).to_numpy(zero_copy_only=False)
    return values, present


def read_source(url: str, ids: list[str], days: int) -> tuple[dict, np.ndarray]:
    columns = ", ".join(generator.COLUMNS)
    return grid(query(url, f"SELECT {columns} FROM data ORDER BY 1, 2"), ids, days)


def difference(a: np.ndarray, b: np.ndarray, limits: schema.Variable) -> np.ndarray:
    """``a - b``, wrapped to [-180, 180) for a circular variable."""
    return np.mod(a - b + 180.0, 360.0) - 180.0 if limits.kind == "circular" else a - b


def qc(values: np.ndarray, limits: schema.Variable) -> dict[str, np.ndarray]:
    """Quality rules 3-5 per UTC day (rows of 1440 minutes; NaN = missing): status masks."""
    v = values.reshape(-1, MINUTES)
    missing = np.isnan(v)
    out = ~missing & ((v < limits.physical_min) | (v > limits.physical_max))
    ok = ~missing & ~out
    same = np.zeros_like(ok)
    same[:, 1:] = ok[:, 1:] & ok[:, :-1] & (v[:, 1:] == v[:, :-1])
    run = np.cumsum(~same.ravel())  # a new run wherever a reading is not its predecessor's
    length = np.bincount(run)[run].reshape(v.shape)
    exempt = np.isin(v, limits.frozen_exempt)
    frozen = np.zeros_like(ok)
    if limits.frozen_minutes is not None:
        frozen = ok & (length >= limits.frozen_minutes) & ~exempt
    spike = np.zeros_like(ok)
    before, here, after = v[:, :-2], v[:, 1:-1], v[:, 2:]
    eligible = ok[:, :-2] & ok[:, 2:] & ok[:, 1:-1] & ~frozen[:, 1:-1]
    step = limits.max_step
    rise, fall = difference(here, before, limits), difference(here, after, limits)
    up = (rise > step) & (fall > step)
    down = (rise < -step) & (fall < -step)
    spike[:, 1:-1] = eligible & (up | down)
    shape = values.shape
    return {
        "out_of_range": out.reshape(shape),
        "frozen": frozen.reshape(shape),
        "spike": spike.reshape(shape),
    }


def logged(log: pa.Table, ids: list[str], days: int) -> dict[tuple[str, str | None], np.ndarray]:
    """The fault log as masks per (fault, variable): gaps under (\"gap\", None)."""
    masks: dict[tuple[str, str | None], np.ndarray] = {}
    index = {turbine: i for i, turbine in enumerate(ids)}
    origin = utc(DAY)
    for turbine, stamp, name, fault in zip(*(c.to_pylist() for c in log.columns), strict=True):
        mask = masks.setdefault((fault, name), np.zeros((len(ids), days * MINUTES), dtype=bool))
        mask[index[turbine], (stamp - origin) // timedelta(minutes=1)] = True
    return masks


def empty(ids, days) -> np.ndarray:
    return np.zeros((len(ids), days * MINUTES), dtype=bool)


# ---------------------------------------------------------------------------------------------
# Upgrade of a previous-release source

OLD_DDL = """
CREATE TABLE data (
    "timestamp" timestamptz PRIMARY KEY,
    wind_speed double precision,
    power double precision,
    ambient_temperature double precision
)
"""


def previous_release_source(url: str) -> list[tuple]:
    """A source as the previous release made it: rows of one day, values unlike the generator's."""
    query(url, OLD_DDL)
    query(
        url,
        "INSERT INTO data SELECT t, 1.5, 250.0, NULLIF(extract(minute FROM t), 7)"
        " FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute',"
        " interval '1 minute') AS t",
        (utc(DAY), utc(DAY, MINUTES)),
    )
    return query(url, "SELECT * FROM data ORDER BY 1")


def test_a_previous_release_source_is_upgraded_in_place_and_keeps_its_rows(source_url):
    old = previous_release_source(source_url)

    report = seed(source_url, start=DAY, days=2, turbines=2)

    kept = query(
        source_url,
        'SELECT "timestamp", wind_speed, power, ambient_temperature FROM data'
        " WHERE turbine_id = 'WTG01' AND \"timestamp\" < %s ORDER BY 1",
        (utc(DAY, MINUTES),),
    )
    assert kept == old and len(old) == MINUTES  # every old row, unchanged, as WTG01
    directions = query(
        source_url,
        "SELECT count(*) FILTER (WHERE wind_direction IS NULL AND nacelle_position IS NULL)"
        " FROM data WHERE turbine_id = 'WTG01' AND \"timestamp\" < %s",
        (utc(DAY, MINUTES),),
    )
    assert directions == [(MINUTES,)]  # the columns came later: NULL in the old rows
    assert report.rows_written == 3 * MINUTES  # WTG01's second day and both days of WTG02
    counts = query(source_url, "SELECT turbine_id, count(*) FROM data GROUP BY 1 ORDER BY 1")
    assert counts == [("WTG01", 2 * MINUTES), ("WTG02", 2 * MINUTES)]
    key = query(
        source_url,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'data'::regclass AND contype IN ('p', 'f') ORDER BY contype",
    )
    assert key == [
        ("FOREIGN KEY (turbine_id) REFERENCES turbine(id)",),
        ('PRIMARY KEY (turbine_id, "timestamp")',),
    ]
    turbines = query(source_url, schema.TURBINES_QUERY)
    assert turbines[0] == ("WTG01", 3000.0, 3.0, 12.0, 25.0, 0.0, 0.0)
    assert [t[0] for t in turbines] == ["WTG01", "WTG02"]

    # idempotent: upgrading and seeding again changes nothing
    before = query(source_url, "SELECT * FROM data ORDER BY 1, 2")
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        schema.ensure_schema(cur)
        schema.ensure_schema(cur)
    assert seed(source_url, start=DAY, days=2, turbines=2).rows_written == 0
    assert query(source_url, "SELECT * FROM data ORDER BY 1, 2") == before


def test_the_upgrade_of_an_empty_previous_release_table_and_of_nothing(make_database):
    empty_old, nothing = make_database(), make_database()
    query(empty_old, OLD_DDL)
    for url in (empty_old, nothing):
        with psycopg2.connect(db.libpq_url(url)) as conn, conn.cursor() as cur:
            schema.ensure_schema(cur)
        columns = query(
            url,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'data'"
            " ORDER BY ordinal_position",
        )
        assert {c for (c,) in columns} == {"turbine_id", "timestamp", *VARIABLES}


# ---------------------------------------------------------------------------------------------
# Determinism


def test_values_depend_only_on_seed_day_and_turbine():
    a = generator.generate(utc(DAY), utc(DAY, 3 * MINUTES), seed=7, turbines=3)
    again = generator.generate(utc(DAY), utc(DAY, 3 * MINUTES), seed=7, turbines=3)
    middle = generator.generate(utc(DAY, MINUTES), utc(DAY, 2 * MINUTES), seed=7, turbines=3)
    other = generator.generate(utc(DAY), utc(DAY, 3 * MINUTES), seed=8, turbines=3)
    assert a.equals(again)
    ids = ["WTG01", "WTG02", "WTG03"]
    full, _ = grid(a, ids, 3)
    part, present = grid(middle, ids, 3)
    for name in VARIABLES:
        np.testing.assert_array_equal(part[name][present], full[name][present])
    assert present.sum() == 3 * MINUTES
    assert not a.column("wind_speed").equals(other.column("wind_speed"))

    # a turbine's own stream does not depend on the fleet around it: where no other turbine is
    # upstream (the wake is exactly 0), WTG01 of a fleet of 3 sees what WTG01 alone sees
    alone, _ = grid(generator.generate(utc(DAY), utc(DAY, 3 * MINUTES), seed=7), ids[:1], 3)
    np.testing.assert_array_equal(alone["ambient_temperature"][0], full["ambient_temperature"][0])
    _, direction, _ = generator.farm_wind(7, [DAY + timedelta(days=d) for d in range(3)])
    unwaked = generator.wake_deficit(generator.farm(3), direction.ravel())[0] == 0
    assert 100 < unwaked.sum() < 3 * MINUTES
    np.testing.assert_array_equal(alone["wind_speed"][0][unwaked], full["wind_speed"][0][unwaked])


# ---------------------------------------------------------------------------------------------
# The farm is a farm


def test_turbines_winds_are_strongly_but_not_perfectly_correlated(seed_source, source_url):
    seed_source(days=3, turbines=3)
    ids = ["WTG01", "WTG02", "WTG03"]
    values, present = read_source(source_url, ids, 3)
    assert present.all()
    for day in range(3):
        wind = values["wind_speed"][:, day * MINUTES : (day + 1) * MINUTES]
        pearson = np.corrcoef(wind)[np.triu_indices(3, 1)]
        assert np.all((pearson > 0.7) & (pearson < 0.99)), (day, pearson)


def test_wakes_lower_the_wind_of_downstream_turbines():
    fleet = generator.farm(3)  # one row, west to east, 5 rotor diameters apart
    assert [(t.x, t.y) for t in fleet] == [(0.0, 0.0), (500.0, 0.0), (1000.0, 0.0)]
    west, east, north = generator.wake_deficit(fleet, np.array([270.0, 90.0, 0.0])).T
    assert west[0] == 0 and 0.1 < west[1] < west[2] < generator.MAX_DEFICIT  # two upstream
    assert east[2] == 0 and 0.1 < east[1] < east[0]
    np.testing.assert_allclose(north, 0.0, atol=1e-9)  # across the row: no wake

    # and in the generated readings: for westerly winds WTG02 sees less than WTG01, for
    # easterly winds more
    days = [DAY + timedelta(days=d) for d in range(120)]
    table = generator.generate(utc(DAY), utc(days[-1], MINUTES), turbines=2)
    values, _ = grid(table, ["WTG01", "WTG02"], len(days))
    _, direction, _ = generator.farm_wind(42, days)
    wind, direction = values["wind_speed"], direction.ravel()
    for sector, lower, upper in (((255, 285), 1, 0), ((75, 105), 0, 1)):
        minutes = (direction > sector[0]) & (direction < sector[1]) & (wind[upper] > 4)
        assert minutes.sum() > 200, sector
        ratio = wind[lower][minutes].mean() / wind[upper][minutes].mean()
        assert ratio < 0.9, (sector, ratio)
    across = (np.abs(direction - 180) < 15) | (direction < 15) | (direction > 345)
    assert abs(wind[1][across].mean() / wind[0][across].mean() - 1) < 0.05


def test_each_turbine_follows_its_own_power_curve_with_downtime(seed_source, source_url):
    seed_source(days=10, turbines=6)
    turbines = query(source_url, schema.TURBINES_QUERY)
    assert len({t[3] for t in turbines}) > 1  # not all the same machine
    down = 0
    for turbine, rated_power, cut_in, rated_speed, cut_out, _, _ in turbines:
        rows = np.array(
            query(
                source_url,
                "SELECT wind_speed, power FROM data WHERE turbine_id = %s ORDER BY timestamp",
                (turbine,),
            )
        )
        wind, power = rows[:, 0], rows[:, 1]
        curve = generator.power_curve(
            wind, rated_power=rated_power, cut_in=cut_in, rated_speed=rated_speed, cut_out=cut_out
        )
        producing = power > 0
        assert producing.mean() > 0.3
        error = np.abs(power - curve)[producing]
        assert np.quantile(error, 0.99) < 5 * generator.POWER_NOISE, turbine
        assert power.max() <= rated_power and power.min() >= -18  # idle self-consumption
        stopped = (power == 0) & (wind > cut_in + 1) & (wind < cut_out - generator.RESTART_BELOW)
        down += stopped.sum()
    assert down >= 60  # somebody's downtime: power 0 with the wind in the operating range


# ---------------------------------------------------------------------------------------------
# Faults and their ground truth


def test_the_faults_log_is_the_truth_reading_by_reading(seed_source, source_url, tmp_path):
    days, ids = 5, ["WTG01", "WTG02", "WTG03"]
    path = tmp_path / "faults.csv"
    report = seed_source(days=days, turbines=3, faults=True, faults_log=path)

    log = generator.fault_log(DAY, DAY + timedelta(days=days), turbines=3)
    assert report.faults_logged == log.num_rows > 0
    with path.open() as file:
        lines = list(csv.reader(file))
    assert lines[0] == ["turbine_id", "timestamp", "variable", "fault"]
    assert len(lines) == log.num_rows + 1
    assert re.fullmatch(
        r"WTG\d\d,\d{4}-\d\d-\d\dT\d\d:\d\d:00Z,[a-z_]*,[a-z_]+", ",".join(lines[1])
    )
    stamps = [s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in log.column("timestamp").to_pylist()]
    assert [line[1] for line in lines[1:]] == stamps
    assert [line[2] or None for line in lines[1:]] == log.column("variable").to_pylist()

    values, present = read_source(source_url, ids, days)
    clean, _ = grid(generator.generate(utc(DAY), utc(DAY, days * MINUTES), turbines=3), ids, days)
    truth = logged(log, ids, days)
    assert {fault for fault, _ in truth} == set(generator.FAULTS)

    np.testing.assert_array_equal(~present, truth[("gap", None)])
    assert report.rows_written == present.sum() == 3 * days * MINUTES - truth[("gap", None)].sum()
    for name in VARIABLES:
        limits = KNOWN_VARIABLES[name]
        status = qc(values[name], limits)
        nulls = present & np.isnan(values[name])
        np.testing.assert_array_equal(nulls, truth.get(("null", name), empty(ids, days)))
        for fault in ("out_of_range", "frozen", "spike"):
            # exactly what QC rejects: recall and precision 100 %
            np.testing.assert_array_equal(
                status[fault], truth.get((fault, name), empty(ids, days)), err_msg=f"{name} {fault}"
            )
        frozen = truth.get(("frozen", name), empty(ids, days))
        inside = (values[name] > limits.physical_min) & (values[name] < limits.physical_max)
        assert inside[frozen].all()
        spikes = np.argwhere(truth.get(("spike", name), empty(ids, days)))
        for turbine, minute in spikes:
            here, around = (
                values[name][turbine, minute],
                values[name][turbine, [minute - 1, minute + 1]],
            )
            assert limits.physical_min < here < limits.physical_max
            assert np.all(np.abs(difference(here, around, limits)) > limits.max_step)
            assert np.all((around >= limits.physical_min) & (around <= limits.physical_max))
        # every reading not logged is the fault-free one
        untouched = present & ~np.any(
            [mask for (_, variable), mask in truth.items() if variable == name], axis=0
        )
        np.testing.assert_array_equal(values[name][untouched], clean[name][untouched])


def test_clean_data_never_looks_faulty_and_faults_are_always_exact_over_a_year():
    """A year of a small fleet in memory: QC rejects nothing clean, and exactly the log."""
    days, ids = 365, ["WTG01", "WTG02"]
    start, end = utc(DAY), utc(DAY, days * MINUTES)
    clean, _ = grid(generator.generate(start, end, turbines=2), ids, days)
    faulty, _ = grid(generator.generate(start, end, turbines=2, faults=True), ids, days)
    truth = logged(generator.fault_log(start, end, turbines=2), ids, days)
    for name in VARIABLES:
        limits = KNOWN_VARIABLES[name]
        for fault, mask in qc(clean[name], limits).items():
            assert not mask.any(), f"clean {name} looks {fault} at {np.argwhere(mask)[:3]}"
        for fault, mask in qc(faulty[name], limits).items():
            np.testing.assert_array_equal(mask, truth.get((fault, name), empty(ids, days)))
    runs = truth[("frozen", "power")].sum() + truth[("spike", "wind_speed")].sum()
    assert runs > 100


def test_faults_change_nothing_else():
    start, end = utc(DAY), utc(DAY, 2 * MINUTES)
    assert generator.generate(start, end, turbines=2).equals(
        generator.generate(start, end, turbines=2)
    )
    with_faults = generator.generate(start, end, turbines=2, faults=True)
    assert with_faults.num_rows < 2 * 2 * MINUTES


# ---------------------------------------------------------------------------------------------
# Seeding options


def test_if_empty_seeds_only_an_empty_source(seed_source, source_url):
    first = seed_source(days=1, turbines=2, if_empty=True)
    assert first.rows_written == 2 * MINUTES
    second = seed_source(start=DAY + timedelta(days=1), days=1, turbines=3, if_empty=True)
    assert second.rows_generated == second.rows_written == 0
    assert query(source_url, "SELECT count(*) FROM data") == [(2 * MINUTES,)]


def test_replace_touches_only_the_fleet_it_seeds(seed_source, source_url):
    seed_source(days=1, turbines=2)
    before = query(source_url, "SELECT * FROM data WHERE turbine_id = 'WTG02' ORDER BY 2")
    seed_source(days=1, turbines=1, faults=True, replace=True)
    assert query(source_url, "SELECT * FROM data WHERE turbine_id = 'WTG02' ORDER BY 2") == before
    nulls = query(
        source_url,
        "SELECT count(*) FROM data WHERE turbine_id = 'WTG01' AND"
        " (wind_speed IS NULL OR power IS NULL OR ambient_temperature IS NULL)",
    )
    assert nulls[0][0] > 0


@pytest.mark.parametrize("turbines", [0, -3])
def test_a_fleet_needs_a_turbine(turbines):
    with pytest.raises(ValueError, match="turbines must be at least 1"):
        generator.farm(turbines)


def test_turbine_ids_have_two_digits_then_three():
    assert [t.id for t in generator.farm(101)][::50] == ["WTG01", "WTG51", "WTG101"]


PEAK_SCRIPT = """
import re, sys
from datetime import UTC, datetime, timedelta
from connector_api import generator
start = datetime(2024, 1, 1, tzinfo=UTC)
for rows, _ in generator.generate_blocks(
    start, start + timedelta(days=int(sys.argv[1])), turbines=20, faults=True
):
    generator.to_csv(rows)
status = open("/proc/self/status").read()
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024)
"""


def test_generating_a_long_range_of_a_fleet_is_memory_bounded():
    """20 turbines: 200 days (5.8 M readings, ~500 MB as arrays and CSV) peak like 40 days."""

    def peak_mb(days: int) -> int:
        result = subprocess.run(
            [sys.executable, "-c", PEAK_SCRIPT, str(days)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return int(result.stdout)

    short, long = peak_mb(40), peak_mb(200)  # both many blocks of days
    assert long - short < 40, (short, long)
