"""Directions at the source: the catalogue's kinds and frozen rules, the vane and the yawing
nacelle, their faults against SQL, and the upgrade of a source of the fleet release."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import psycopg2
import pytest

from connector_api import db, generator, schema
from wind_pipeline_tests.conftest import DAY

MINUTES = 1440
ANGLES = ("wind_direction", "nacelle_position")


def utc(day, minutes: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes)


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(db.libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def wrapped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.mod(a - b + 180.0, 360.0) - 180.0


# ---------------------------------------------------------------------------------------------
# GET /variables


def described(name, unit, low, high, step, kind, frozen_minutes, exempt) -> dict:
    return {
        "name": name,
        "unit": unit,
        "physical_min": low,
        "physical_max": high,
        "max_step": step,
        "kind": kind,
        "frozen_minutes": frozen_minutes,
        "frozen_exempt": exempt,
    }


EXPECTED = [
    described("wind_speed", "m/s", 0, 40, 10, "linear", 10, [0]),
    described("power", "kW", -150, 3450, 1500, "linear", 10, [0, 3000]),
    described("ambient_temperature", "°C", -40, 50, 5, "linear", 10, []),
    described("wind_direction", "°", 0, 360, 90, "circular", 10, []),
    described("nacelle_position", "°", 0, 360, 30, "circular", None, []),
    described("rotor_speed", None, None, None, None, "linear", 10, []),  # not described
]


def test_variables_serve_kind_and_frozen_rules(seed_source, source_url, serve_api):
    seed_source(days=1)
    query(source_url, "ALTER TABLE data ADD COLUMN rotor_speed double precision")
    body = httpx.get(f"{serve_api()}/variables", timeout=30).json()
    descriptions = [variable.pop("description") for variable in body]
    assert body == EXPECTED
    assert all(descriptions)
    assert descriptions[-1] == "A numeric column of the source table (no description)."


# ---------------------------------------------------------------------------------------------
# The vane and the nacelle


def test_the_nacelle_follows_the_wind_with_lag_dead_band_and_misalignment():
    days, turbines = 10, 4
    table = generator.generate(utc(DAY), utc(DAY, days * MINUTES), turbines=turbines)
    direction = table.column("wind_direction").to_numpy().reshape(turbines, -1)
    nacelle = table.column("nacelle_position").to_numpy().reshape(turbines, -1)
    assert ((direction >= 0) & (direction < 360)).all() and ((nacelle >= 0) & (nacelle < 360)).all()
    misalignment = [generator.yaw_misalignment(n) for n in range(1, turbines + 1)]
    assert max(misalignment) - min(misalignment) > 2  # each machine its own, a few degrees
    assert all(abs(m) <= 6 for m in misalignment)
    for turbine in range(turbines):
        error = wrapped(direction[turbine], nacelle[turbine])
        assert abs(error.mean() - misalignment[turbine]) < 1.0, turbine  # the static part
        assert 1.0 < error.std() < 10.0  # the lag and the dead band: never exact, never far
        by_day = nacelle[turbine].reshape(days, MINUTES)  # each day on its own, as QC judges
        moves = np.abs(wrapped(by_day[:, 1:], by_day[:, :-1]))
        assert moves.max() <= 30.0  # the catalogue's max_step: clean data is never a spike
        assert (moves == 0).mean() > 0.5  # inside the dead band the nacelle holds still
    # the vane sees the farm's wind: turbines agree closely but not exactly
    assert 0 < np.abs(wrapped(direction[0], direction[1])).mean() < 15


def test_directions_depend_only_on_seed_day_and_turbine():
    start, end = utc(DAY), utc(DAY, 2 * MINUTES)
    fleet = generator.generate(start, end, seed=7, turbines=3, faults=True)
    assert fleet.equals(generator.generate(start, end, seed=7, turbines=3, faults=True))
    alone = generator.generate(start, end, seed=7, turbines=1)
    first = generator.generate(start, end, seed=7, turbines=3).slice(0, 2 * MINUTES)
    for name in ANGLES:  # no wake in a direction: WTG01's is the same in any fleet
        assert first.column(name).equals(alone.column(name))
    other = generator.generate(start, end, seed=8, turbines=1)
    assert not other.column("wind_direction").equals(alone.column("wind_direction"))
    assert generator.fault_log(start, end, seed=7, turbines=3).equals(
        generator.fault_log(start, end, seed=7, turbines=3)
    )


# ---------------------------------------------------------------------------------------------
# The direction faults: what the truth log says is what the source holds

# Per (turbine, UTC day) and variable, the wrapped steps to the previous and next minute, and
# the length of the run of equal values at consecutive minutes each reading belongs to.
FLAGS_SQL = """
WITH r AS (
    SELECT turbine_id, "timestamp" AS t, {v} AS v,
           lag({v}) OVER w AS before, lead({v}) OVER w AS after,
           "timestamp" - lag("timestamp") OVER w = interval '1 minute' AS joined_before,
           lead("timestamp") OVER w - "timestamp" = interval '1 minute' AS joined_after,
           CASE WHEN {v} IS NOT DISTINCT FROM lag({v}) OVER w
                 AND "timestamp" - lag("timestamp") OVER w = interval '1 minute'
                THEN 0 ELSE 1 END AS new_run
    FROM data
    WINDOW w AS (PARTITION BY turbine_id, date_trunc('day', "timestamp" AT TIME ZONE 'UTC')
                 ORDER BY "timestamp")
), runs AS (
    SELECT *, sum(new_run) OVER (PARTITION BY turbine_id ORDER BY t) AS run FROM r
), sized AS (
    SELECT *, count(*) OVER (PARTITION BY turbine_id, run) AS run_length FROM runs
), stepped AS (
    SELECT *,
           mod((v - before + 540)::numeric, 360) - 180 AS up,
           mod((v - after + 540)::numeric, 360) - 180 AS down
    FROM sized
)
SELECT turbine_id, t,
       CASE WHEN v < 0 OR v > 360 THEN 'out_of_range'
            WHEN {frozen} AND run_length >= 10 THEN 'frozen'
            WHEN joined_before AND joined_after AND before BETWEEN 0 AND 360
                 AND after BETWEEN 0 AND 360
                 AND ((up > {step} AND down > {step}) OR (up < -{step} AND down < -{step}))
            THEN 'spike' END AS fault,
       v, before, after
FROM stepped WHERE v IS NOT NULL
"""


def flagged(url: str, name: str) -> dict[tuple[str, datetime], tuple[str, float, float, float]]:
    """{(turbine, minute): (reason, value, before, after)} of the readings SQL finds faulty."""
    limits = schema.KNOWN_VARIABLES[name]
    sql = FLAGS_SQL.format(
        v=name, step=limits.max_step, frozen="true" if limits.frozen_minutes else "false"
    )
    return {
        (turbine, t): (fault, value, before, after)
        for turbine, t, fault, value, before, after in query(url, sql)
        if fault is not None
    }


def test_the_truth_of_the_direction_faults_is_what_the_source_holds(
    seed_source, source_url, tmp_path
):
    days, turbines = 4, 3
    seed_source(days=days, turbines=turbines, faults=True, faults_log=tmp_path / "faults.csv")
    log = generator.fault_log(DAY, DAY + timedelta(days=days), turbines=turbines)
    rows = zip(*(log.column(c).to_pylist() for c in log.column_names), strict=True)
    truth: dict[str, dict] = {name: {} for name in ANGLES}
    nulls = dict.fromkeys(ANGLES, 0)
    for turbine, stamp, name, fault in rows:
        if name in ANGLES and fault == "null":
            nulls[name] += 1
        elif name in ANGLES:
            truth[name][(turbine, stamp)] = fault

    for name in ANGLES:
        found = flagged(source_url, name)
        assert {key: f[0] for key, f in found.items()} == truth[name], name  # recall, precision
        # per turbine-day: one out-of-range reading and one spike of each; a stuck vane
        count = Counter(truth[name].values())
        assert count["out_of_range"] == count["spike"] == days * turbines
        if name == "wind_direction":
            assert count["frozen"] >= 10 * days * turbines
        else:
            assert "frozen" not in count  # a still nacelle is no fault
        assert {f[1] for f in found.values() if f[0] == "out_of_range"} <= {400.0, -5.0}
        spikes = [f for f in found.values() if f[0] == "spike"]
        if name == "wind_direction":  # a jump across north and back, mostly
            across = [v for _, v, before, _ in spikes if abs(v - before) > 180]
            assert len(across) > len(spikes) / 2
    stored_nulls = query(
        source_url,
        "SELECT count(*) FILTER (WHERE wind_direction IS NULL),"
        " count(*) FILTER (WHERE nacelle_position IS NULL) FROM data",
    )[0]
    assert stored_nulls == (nulls["wind_direction"], nulls["nacelle_position"])


# ---------------------------------------------------------------------------------------------
# A source of the fleet release: no direction columns

FLEET_RELEASE_DDL = (
    """
    CREATE TABLE turbine (
        id text PRIMARY KEY, rated_power double precision, cut_in double precision,
        rated_speed double precision, cut_out double precision, x double precision,
        y double precision
    )
    """,
    """
    CREATE TABLE data (
        turbine_id text NOT NULL REFERENCES turbine(id),
        "timestamp" timestamptz NOT NULL,
        wind_speed double precision,
        power double precision,
        ambient_temperature double precision,
        PRIMARY KEY (turbine_id, "timestamp")
    )
    """,
)


@pytest.fixture
def fleet_release_source(source_url) -> list[tuple]:
    """A source as the fleet release left it: two turbines, a day each; its rows."""
    for ddl in FLEET_RELEASE_DDL:
        query(source_url, ddl)
    query(source_url, "INSERT INTO turbine (id) VALUES ('WTG01'), ('WTG02')")
    query(
        source_url,
        "INSERT INTO data SELECT id, t, 6.5, -12.5, 4.25 FROM turbine,"
        " generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute',"
        " interval '1 minute') AS t",
        (utc(DAY), utc(DAY, MINUTES)),
    )
    return query(source_url, "SELECT * FROM data ORDER BY 1, 2")


def test_a_fleet_release_source_serves_and_upgrades_keeping_every_row(
    fleet_release_source, source_url, serve_api
):
    day = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}
    with httpx.Client(base_url=serve_api(), timeout=30) as api:
        names = [v["name"] for v in api.get("/variables").json()]
        assert names == ["wind_speed", "power", "ambient_temperature"]
        rows = api.get("/data", params={**day, "variables": "power"}).json()
        assert len(rows) == 2 * MINUTES and rows[0]["power"] == -12.5

    # the next start of `connector-api serve` (or seed) upgrades the source, then serves it
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        schema.ensure_schema(cur)
        schema.ensure_schema(cur)  # idempotent
    with httpx.Client(base_url=serve_api(), timeout=30) as api:
        kept = query(
            source_url,
            'SELECT turbine_id, "timestamp", wind_speed, power, ambient_temperature'
            " FROM data ORDER BY 1, 2",
        )
        assert kept == fleet_release_source and len(kept) == 2 * MINUTES
        assert query(
            source_url,
            "SELECT count(*) FROM data WHERE wind_direction IS NULL AND nacelle_position IS NULL",
        ) == [(2 * MINUTES,)]
        columns = query(
            source_url,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'data' AND column_name IN %s ORDER BY ordinal_position",
            (ANGLES,),
        )
        assert columns == [(name, "double precision") for name in ANGLES]

        names = [v["name"] for v in api.get("/variables").json()]
        assert names == ["wind_speed", "power", "ambient_temperature", *ANGLES]
        rows = api.get("/data", params={**day, "variables": ",".join(ANGLES)}).json()
        assert len(rows) == 2 * MINUTES
        assert all(r["wind_direction"] is None and r["nacelle_position"] is None for r in rows)

    # the next seed fills the second day with directions, the first day stays as it was
    report = generator.write(source_url, utc(DAY), utc(DAY, 2 * MINUTES), turbines=2)
    assert report.rows_written == 2 * MINUTES
    assert query(
        source_url,
        "SELECT count(*) FILTER (WHERE wind_direction IS NULL),"
        " count(*) FILTER (WHERE wind_direction IS NOT NULL) FROM data",
    ) == [(2 * MINUTES, 2 * MINUTES)]
