"""GET /days over HTTP: per (day, turbine) counts and versions that follow every change of a
reading and nothing else, equal to SQL over the source table; bad input refused; an earlier
source upgraded in place."""

from __future__ import annotations

from datetime import timedelta

import httpx
import psycopg2
import pytest

from connector_api import cli, db, schema
from wind_pipeline_tests.conftest import DAY

FLEET = ["WTG01", "WTG02", "WTG03"]
DAYS = 3
WINDOW = {"start": DAY.isoformat(), "end": (DAY + timedelta(days=DAYS)).isoformat()}

# The reference: the same summary computed by SQL over the source table.
REFERENCE = """
SELECT to_char(("timestamp" AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD'), turbine_id, count(*),
       to_char(min("timestamp") AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(max("timestamp") AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM data GROUP BY 1, 2 ORDER BY 1, 2
"""


def sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(db.libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


def at(day_offset: int, hour: int = 0, minute: int = 0) -> str:
    day = DAY + timedelta(days=day_offset)
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00Z"


@pytest.fixture
def api(seed_source, serve_api) -> httpx.Client:
    """Three days of three turbines, with faults (gaps, NULL readings), behind a served API."""
    seed_source(days=DAYS, turbines=len(FLEET), faults=True)
    with httpx.Client(base_url=serve_api(), timeout=30) as client:
        yield client


def days(api: httpx.Client, **params) -> list[dict]:
    response = api.get("/days", params={**WINDOW, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def versions(api: httpx.Client) -> dict[tuple[str, str], str]:
    return {(d["day"], d["turbine_id"]): d["version"] for d in days(api)}


def changed(before: dict, after: dict) -> set:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def test_days_equal_sql_over_the_source(api, source_url):
    # a partial day: WTG02's first day starts at 06:00
    sql(
        source_url,
        "DELETE FROM data WHERE turbine_id = 'WTG02' AND \"timestamp\" < %s",
        (at(0, 6),),
    )
    served = days(api)
    assert [tuple(d[k] for k in list(d)[:5]) for d in served] == sql(source_url, REFERENCE)
    assert list(served[0]) == [
        "day",
        "turbine_id",
        "readings",
        "first_timestamp",
        "last_timestamp",
        "version",
    ]
    assert len(served) == DAYS * len(FLEET)
    assert any(d["readings"] < 1440 for d in served)  # the faults' gaps are not counted
    nulls = sql(
        source_url,
        "SELECT count(*) FROM data WHERE wind_speed IS NULL OR power IS NULL"
        " OR ambient_temperature IS NULL",
    )[0][0]
    assert nulls > 0  # rows with NULL readings are counted (the reference counts rows)
    assert all(isinstance(d["version"], str) and d["version"] for d in served)
    assert len({d["version"] for d in served}) == len(served)
    partial = next(d for d in served if d["turbine_id"] == "WTG02")
    assert partial["first_timestamp"] == at(0, 6)


def test_timestamps_are_formatted_as_data_formats_them(api, source_url):
    sql(
        source_url,
        "INSERT INTO data (turbine_id, \"timestamp\") VALUES ('WTG03', %s::timestamptz + "
        "interval '30.25 seconds')",
        (at(1, 23, 59),),
    )
    served = {(d["day"], d["turbine_id"]): d for d in days(api)}
    for (day, turbine), entry in served.items():
        rows = api.get(
            "/data", params={"start": day, "end": entry["last_timestamp"], "turbines": turbine}
        ).json()
        assert entry["first_timestamp"] == rows[0]["timestamp"]
    late = served[((DAY + timedelta(days=1)).isoformat(), "WTG03")]
    assert late["last_timestamp"] == f"{DAY + timedelta(days=1)}T23:59:30.250000Z"
    assert (
        late["readings"]
        == sql(
            source_url,
            "SELECT count(*) FROM data WHERE turbine_id = 'WTG03' AND \"timestamp\" >= %s"
            ' AND "timestamp" < %s',
            (at(1), at(2)),
        )[0][0]
    )
    one = api.get(
        "/data",
        params={"start": at(1, 23, 59), "end": at(2), "turbines": "WTG03", "variables": "power"},
    ).json()
    assert one[-1]["timestamp"] == late["last_timestamp"]


def test_versions_change_on_insert_update_and_delete_of_a_reading_only(api, source_url):
    start = versions(api)
    day0, day1, day2 = ((DAY + timedelta(days=n)).isoformat() for n in range(3))

    # nothing else changes a version: reads, a start's upgrade, re-seeds that write nothing
    api.get("/data", params={"start": day0, "end": day2})
    schema_url = db.libpq_url(source_url)
    with psycopg2.connect(schema_url) as conn, conn.cursor() as cur:
        schema.ensure_schema(cur)
    seed = ["seed", "--database-url", source_url, "--start", day0, "--days", str(DAYS)]
    seed += ["--turbines", "3", "--faults"]
    assert cli.main([*seed, "--if-empty"]) == 0
    assert cli.main(seed) == 0  # insert-or-ignore: nothing new
    assert versions(api) == start

    # delete one reading: only its (day, turbine) changes, and counts one fewer
    sql(
        source_url,
        "DELETE FROM data WHERE turbine_id = 'WTG01' AND \"timestamp\" = %s",
        (at(0, 12),),
    )
    deleted = versions(api)
    assert changed(start, deleted) == {(day0, "WTG01")}

    # insert it again: a new version again, not the old one
    assert cli.main(seed) == 0
    inserted = versions(api)
    assert changed(deleted, inserted) == {(day0, "WTG01")}
    assert inserted[(day0, "WTG01")] not in {start[(day0, "WTG01")], deleted[(day0, "WTG01")]}

    # update one reading of another turbine and day
    sql(
        source_url,
        "UPDATE data SET power = 1.0 WHERE turbine_id = 'WTG02' AND \"timestamp\" = %s",
        (at(1, 8),),
    )
    updated = versions(api)
    assert changed(inserted, updated) == {(day1, "WTG02")}

    # an update that moves a reading to another day changes both days
    moved_rows = sql(
        source_url,
        'UPDATE data SET "timestamp" = "timestamp" + interval \'2 days\''
        " WHERE turbine_id = 'WTG03' AND \"timestamp\" = %s RETURNING 1",
        (at(1),),
    )
    assert moved_rows == [(1,)]
    day3 = (DAY + timedelta(days=3)).isoformat()
    moved = versions(api)
    assert changed(updated, moved) == {(day1, "WTG03")}  # the window ends with day2
    wider = {(d["day"], d["turbine_id"]): d for d in days(api, end="2024-01-30")}
    assert wider[(day3, "WTG03")]["readings"] == 1
    assert [tuple(d[k] for k in list(d)[:5]) for d in wider.values()] == sql(source_url, REFERENCE)

    # an update that touches no row, and reads, change nothing
    sql(source_url, "UPDATE data SET power = 0 WHERE turbine_id = 'WTG03' AND power < -1e9")
    assert versions(api) == moved

    # every row of a (day, turbine) deleted: the day is no longer listed for it
    sql(
        source_url,
        'DELETE FROM data WHERE turbine_id = \'WTG02\' AND "timestamp" >= %s AND "timestamp" < %s',
        (at(2), at(3)),
    )
    emptied = versions(api)
    assert changed(moved, emptied) == {(day2, "WTG02")} and (day2, "WTG02") not in emptied
    assert [(d["day"], d["turbine_id"]) for d in days(api)] == sorted(emptied)
    everything = days(api, end="2024-01-30")
    assert [tuple(d[k] for k in list(d)[:5]) for d in everything] == sql(source_url, REFERENCE)

    sql(source_url, "TRUNCATE data")
    assert days(api) == []


def test_turbines_and_the_window_select_as_data_does(api):
    everything = days(api)
    assert [(d["day"], d["turbine_id"]) for d in everything] == sorted(
        ((DAY + timedelta(days=n)).isoformat(), t) for n in range(DAYS) for t in FLEET
    )
    picked = [d for d in everything if d["turbine_id"] in ("WTG01", "WTG03")]
    assert days(api, turbines="WTG03,WTG01") == picked
    assert days(api, turbines=["WTG03", "WTG01"]) == picked
    second = (DAY + timedelta(days=1)).isoformat()
    one_day = days(api, start=second, end=(DAY + timedelta(days=2)).isoformat())
    assert one_day == [d for d in everything if d["day"] == second]
    assert days(api, start="2030-01-01", end="2030-02-01") == []


ALLOWED = "allowed: WTG01, WTG02, WTG03"


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"start": "2024-01-01"}, "missing parameter: end (a UTC date YYYY-MM-DD, exclusive"),
        ({**WINDOW, "turbine": "WTG01"}, "unknown parameter(s): turbine; allowed: start, end,"),
        ({**WINDOW, "format": "csv"}, "unknown parameter(s): format;"),
        ({**WINDOW, "turbines": "WTG09"}, f"unknown turbine(s): WTG09; {ALLOWED}"),
        ({**WINDOW, "turbines": "WTG01' OR '1'='1"}, "unknown turbine(s): WTG01' OR '1'='1"),
        ({**WINDOW, "start": "2024-01-01T00:00:00Z"}, "malformed date start='2024-01-01T00:"),
        ({**WINDOW, "start": "yesterday"}, "malformed date start='yesterday'; expected a UTC"),
        ({**WINDOW, "end": "2024-02-30"}, "malformed date end='2024-02-30': day is out of range"),
        ({**WINDOW, "start": "1800-01-01"}, "date start='1800-01-01' is out of range"),
        ({"start": "2024-01-02", "end": "2024-01-02"}, "end (2024-01-02) must be after start"),
        ({"start": "2024-01-03", "end": "2024-01-02"}, "end (2024-01-02) must be after start"),
        (
            {"start": "2000-01-01", "end": "2024-01-02"},
            "the range 2000-01-01 to 2024-01-02 spans 8767 days; at most 3660",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_problem(api, params, detail):
    response = api.get("/days", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(detail), response.json()["detail"]


def test_the_api_key_is_required_when_set(seed_source, serve_api):
    seed_source(days=1)
    with httpx.Client(base_url=serve_api(api_key="k"), timeout=30) as client:
        assert client.get("/days", params=WINDOW).status_code == 401
        response = client.get("/days", params=WINDOW, headers={"X-API-Key": "k"})
        assert response.status_code == 200 and len(response.json()) == 1


# The fleet release's DDL (the release before versions), written out as it was.
FLEET_RELEASE_DDL = """
CREATE TABLE turbine (id text PRIMARY KEY, rated_power double precision, cut_in double precision,
    rated_speed double precision, cut_out double precision, x double precision, y double precision);
CREATE TABLE data (
    turbine_id text NOT NULL REFERENCES turbine(id),
    "timestamp" timestamptz NOT NULL,
    wind_speed double precision,
    power double precision,
    ambient_temperature double precision,
    PRIMARY KEY (turbine_id, "timestamp")
);
INSERT INTO turbine (id) VALUES ('WTG01'), ('WTG02');
INSERT INTO data SELECT t, m, 1.5, NULLIF(extract(minute FROM m), 7), NULL
FROM unnest(ARRAY['WTG01', 'WTG02']) AS t,
     generate_series(%s::timestamptz, %s::timestamptz, interval '1 minute') AS m
WHERE NOT (t = 'WTG02' AND m < %s::timestamptz);
"""

# The release before the fleet: no turbine, keyed on the timestamp alone.
SINGLE_RELEASE_DDL = """
CREATE TABLE data ("timestamp" timestamptz PRIMARY KEY, wind_speed double precision,
    power double precision, ambient_temperature double precision);
INSERT INTO data SELECT m, 2.5, 100.0, NULL
FROM generate_series(%s::timestamptz, %s::timestamptz, interval '1 minute') AS m;
"""


@pytest.mark.parametrize("ddl", [FLEET_RELEASE_DDL, SINGLE_RELEASE_DDL], ids=["fleet", "single"])
def test_an_earlier_source_is_upgraded_in_place(source_url, serve_api, ddl):
    # two days and a half, the last reading mid-day
    bounds = (at(0, 0), at(2, 11, 59), at(1, 3))
    sql(source_url, ddl, bounds[: ddl.count("%s")])
    readings = (
        'SELECT "timestamp", wind_speed, power, ambient_temperature FROM data ORDER BY 1, 2, 3'
    )
    before = sql(source_url, readings)

    base = serve_api()
    with httpx.Client(base_url=base, timeout=30) as client:
        response = client.get("/days", params=WINDOW)
        assert response.status_code == 503  # not upgraded yet: the API never writes
        assert "connector-api serve" in response.json()["detail"]

        cli._upgrade_schema(source_url)  # what `connector-api serve` runs at its start
        assert sql(source_url, readings) == before
        served = client.get("/days", params=WINDOW).json()
        reference = sql(source_url, REFERENCE)
        assert [tuple(d[k] for k in list(d)[:5]) for d in served] == reference
        assert len(reference) == (5 if ddl is FLEET_RELEASE_DDL else 3)
        assert all(d["version"] for d in served)

        # a second start changes nothing; a change afterwards is followed
        cli._upgrade_schema(source_url)
        again = client.get("/days", params=WINDOW).json()
        assert again == served
        sql(source_url, 'DELETE FROM data WHERE "timestamp" = %s', (at(2, 11, 59),))
        after = client.get("/days", params=WINDOW).json()
        assert [d["readings"] for d in after] == [
            d["readings"] - (d["day"] == at(2)[:10]) for d in served
        ]
        assert [d["version"] != s["version"] for d, s in zip(after, served, strict=True)] == [
            d["day"] == at(2)[:10] for d in served
        ]
        assert [tuple(d[k] for k in list(d)[:5]) for d in after] == sql(source_url, REFERENCE)


def test_a_dropped_trigger_is_restored_and_every_day_summarised_again(api, source_url):
    before = versions(api)
    sql(source_url, "DROP TRIGGER day_version_delete ON data")
    sql(
        source_url,
        "DELETE FROM data WHERE turbine_id = 'WTG01' AND \"timestamp\" = %s",
        (at(0, 9),),
    )
    assert versions(api) == before  # nothing followed the delete: the summary is stale
    cli._upgrade_schema(source_url)  # the next start notices and rebuilds
    after = days(api)
    assert [tuple(d[k] for k in list(d)[:5]) for d in after] == sql(source_url, REFERENCE)
    assert all(d["version"] != before[(d["day"], d["turbine_id"])] for d in after)
    sql(
        source_url,
        "DELETE FROM data WHERE turbine_id = 'WTG02' AND \"timestamp\" = %s",
        (at(0, 9),),
    )
    assert changed({(d["day"], d["turbine_id"]): d["version"] for d in after}, versions(api)) == {
        (DAY.isoformat(), "WTG02")
    }
