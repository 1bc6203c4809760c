"""The connector API over a fleet: turbines=, turbine_id in every format, GET /turbines."""

from __future__ import annotations

import httpx
import psycopg2
import pyarrow as pa
import pytest

from connector_api import db
from connector_api.routes import data as data_route
from wind_pipeline_tests.test_api import ONE_DAY, rows_from, source_rows

FLEET = ["WTG01", "WTG02", "WTG03"]
ALLOWED = "allowed: WTG01, WTG02, WTG03"
VARIABLES = ["wind_speed", "power"]


@pytest.fixture
def api(seed_source, serve_api) -> httpx.Client:
    """A day of three turbines, with faults (NULLs and gaps), behind a served API."""
    seed_source(days=1, turbines=3, faults=True)
    with httpx.Client(base_url=serve_api(), timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    ("turbines", "unknown"),
    [
        ("WTG09", "WTG09"),
        ("WTG01,WTG09,wtg02", "WTG09, wtg02"),  # a mix; ids are case-sensitive
        (["WTG01", "WTG00"], "WTG00"),  # repeated
        ("WTG01' OR '1'='1", "WTG01' OR '1'='1"),
        ("WTG01);DROP TABLE data;--", "WTG01);DROP TABLE data;--"),
    ],
)
def test_unknown_turbines_are_refused_naming_the_allowed(api, source_url, turbines, unknown):
    response = api.get("/data", params={**ONE_DAY, "turbines": turbines})
    assert response.status_code == 422
    assert response.json()["detail"] == f"unknown turbine(s): {unknown}; {ALLOWED}"
    assert len(source_rows(source_url, ["power"], *ONE_DAY.values())) > 3 * 1400  # intact


@pytest.mark.parametrize(
    ("turbines", "asked"),
    [(None, None), ("WTG03,WTG01", ["WTG01", "WTG03"]), (["WTG02"], ["WTG02"])],
)
def test_every_format_carries_the_same_fleet_rows(api, source_url, turbines, asked):
    """JSON, NDJSON, CSV and Arrow: the rows SQL reads, in (turbine_id, timestamp) order."""
    expected = source_rows(source_url, VARIABLES, *ONE_DAY.values(), turbines=asked)
    assert {row[0] for row in expected} == set(asked or FLEET)
    assert any(None in row for row in expected)  # faults: NULLs are compared too
    params = {**ONE_DAY, "variables": VARIABLES}
    if turbines is not None:
        params["turbines"] = turbines
    for name in ("json", "ndjson", "csv", "arrow"):
        response = api.get("/data", params={**params, "format": name})
        assert response.status_code == 200, response.text
        assert rows_from(response) == expected, name


def test_repeated_and_comma_separated_turbines_agree(api):
    repeated = api.get("/data", params={**ONE_DAY, "turbines": ["WTG02", "WTG01", "WTG02"]})
    commas = api.get("/data", params={**ONE_DAY, "turbines": " WTG01 ,WTG02"})
    assert repeated.status_code == commas.status_code == 200
    assert repeated.content == commas.content
    ids = [r["turbine_id"] for r in repeated.json()]
    assert list(dict.fromkeys(ids)) == ["WTG01", "WTG02"]  # key order, whatever the order asked


def test_arrow_turbine_column_is_a_non_null_dictionary(api):
    response = api.get("/data", params={**ONE_DAY, "format": "arrow"})
    table = pa.ipc.open_stream(response.content).read_all()
    field = table.schema.field(0)
    assert field.name == "turbine_id" and not field.nullable
    assert field.type == pa.dictionary(pa.int32(), pa.string())
    assert table.schema.names[1:] == [
        "timestamp",
        "wind_speed",
        "power",
        "ambient_temperature",
        "wind_direction",
        "nacelle_position",
    ]
    keys = list(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    assert keys == sorted(set(keys))  # ordered by the key, no row twice
    assert sorted(set(table.column(0).to_pylist())) == FLEET


def test_a_fleet_streams_in_chunks_across_turbine_boundaries(api, source_url, monkeypatch):
    """Small chunks: every row once, none lost where a chunk spans two turbines, each chunk
    within the bound."""
    monkeypatch.setattr(data_route, "CHUNK_ROWS", 500)
    expected = source_rows(source_url, VARIABLES, *ONE_DAY.values())
    params = {**ONE_DAY, "variables": VARIABLES}
    arrow = api.get("/data", params={**params, "format": "arrow"})
    batches = list(pa.ipc.open_stream(arrow.content))
    assert len(batches) >= len(expected) // 500 and all(b.num_rows <= 500 for b in batches)
    assert any(len(set(b.column(0).to_pylist())) == 2 for b in batches)  # a chunk spans two
    assert rows_from(arrow) == expected
    for name in ("json", "ndjson", "csv"):
        assert rows_from(api.get("/data", params={**params, "format": name})) == expected, name


def test_turbines_lists_the_fleet_with_its_properties(api, source_url):
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, rated_power, cut_in, rated_speed, cut_out, x, y FROM turbine")
        expected = sorted(cur.fetchall())
    body = api.get("/turbines").json()
    assert [t["id"] for t in body] == FLEET
    assert [tuple(t.values()) for t in body] == expected
    assert list(body[0]) == ["id", "rated_power", "cut_in", "rated_speed", "cut_out", "x", "y"]
    assert body[0]["rated_power"] == 3000.0


def test_a_turbine_added_after_start_is_served(api, source_url):
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO turbine SELECT 'WTG04', rated_power, cut_in, rated_speed, cut_out,"
            " x + 500, y FROM turbine WHERE id = 'WTG03'"
        )
        cur.execute(
            "INSERT INTO data SELECT 'WTG04', timestamp, wind_speed, power, ambient_temperature"
            " FROM data WHERE turbine_id = 'WTG03'"
        )
    rows = api.get("/data", params={**ONE_DAY, "turbines": "WTG04"}).json()
    assert {r["turbine_id"] for r in rows} == {"WTG04"} and len(rows) > 1400
    everyone = api.get("/data", params={**ONE_DAY, "variables": "power"}).json()
    assert sorted({r["turbine_id"] for r in everyone}) == [*FLEET, "WTG04"]
    assert [t["id"] for t in api.get("/turbines").json()] == [*FLEET, "WTG04"]
    refused = api.get("/data", params={**ONE_DAY, "turbines": "WTG05"})
    assert refused.json()["detail"] == "unknown turbine(s): WTG05; allowed: " + ", ".join(
        [*FLEET, "WTG04"]
    )


def test_meta_routes_refuse_unknown_parameters(api):
    for path in ("/turbines", "/variables", "/health"):
        response = api.get(path, params={"verbose": "1"})
        assert response.status_code == 422, path
        assert response.json()["detail"] == "unknown parameter(s): verbose; allowed: none"


def test_odd_turbine_ids_come_back_intact_in_every_format(api, source_url):
    """Ids with a brace sequence, a comma and a quote: NDJSON still one object per line, CSV
    quoted as RFC 4180 says, and every format equal to SQL. (Such ids are served when the
    turbines are omitted; a comma cannot be named in turbines=, where it separates ids.)"""
    odd = ['X},{"a":1', 'Y,"z"']
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        for turbine in odd:
            cur.execute("INSERT INTO turbine (id) VALUES (%s)", (turbine,))
            cur.execute(
                "INSERT INTO data SELECT %s, timestamp, wind_speed, power, ambient_temperature"
                " FROM data WHERE turbine_id = 'WTG01' AND timestamp < '2024-01-01T01:00Z'",
                (turbine,),
            )
    expected = source_rows(source_url, VARIABLES, *ONE_DAY.values(), turbines=odd)
    assert {row[0] for row in expected} == set(odd)
    for name in ("json", "ndjson", "csv", "arrow"):
        response = api.get("/data", params={**ONE_DAY, "variables": VARIABLES, "format": name})
        rows = [row for row in rows_from(response) if row[0] in odd]
        assert rows == expected, name
