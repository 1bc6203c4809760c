"""The connector API served over HTTP on a real PostgreSQL: every route, format and bad input."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import psycopg2
import pyarrow as pa
import pytest

from connector_api import db
from connector_api.formats import ARROW_MEDIA_TYPE
from connector_api.routes import data as data_route
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.ports import free_port

ALL = ["wind_speed", "power", "ambient_temperature", "wind_direction", "nacelle_position"]
ONE_DAY = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}


@pytest.fixture
def api(seed_source, serve_api) -> httpx.Client:
    """Two days (with faults, so NULLs and gaps) behind a served API."""
    seed_source(days=2, faults=True)
    with httpx.Client(base_url=serve_api(), timeout=30) as client:
        yield client


def rows_from(response: httpx.Response) -> list[tuple]:
    """Any format's body as (turbine, timestamp text, values…) tuples, None for a missing one."""
    media_type = response.headers["content-type"].split(";")[0]
    if media_type == "application/json":
        return [tuple(row.values()) for row in response.json()]
    if media_type == "application/x-ndjson":
        return [tuple(orjson.loads(line).values()) for line in response.content.splitlines()]
    if media_type == "text/csv":
        lines = list(csv.reader(io.StringIO(response.text)))[1:]
        return [(turbine, t, *(float(v) if v else None for v in vs)) for turbine, t, *vs in lines]
    assert media_type == ARROW_MEDIA_TYPE
    table = pa.ipc.open_stream(response.content).read_all()
    stamps = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in table.column(1).to_pylist()]
    return list(
        zip(
            table.column(0).to_pylist(),
            stamps,
            *(table.column(i).to_pylist() for i in range(2, table.num_columns)),
            strict=True,
        )
    )


def source_rows(url: str, variables: list[str], start, end, turbines=None) -> list[tuple]:
    """The same rows straight from the database: the independent reference."""
    columns = ", ".join(variables)
    where = " AND turbine_id = ANY(%s)" if turbines else ""
    with psycopg2.connect(db.libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT turbine_id,"
            f" to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
            f" {columns} FROM data WHERE timestamp >= %s AND timestamp < %s{where}"
            " ORDER BY turbine_id, timestamp",
            (start, end, *([list(turbines)] if turbines else [])),
        )
        return cur.fetchall()


def test_every_format_carries_the_database_values(api, source_url):
    params = {**ONE_DAY, "variables": "power,wind_speed"}
    expected = source_rows(source_url, ["power", "wind_speed"], *ONE_DAY.values())
    assert any(None in row for row in expected)  # faults: the comparison covers NULLs

    for name in ("json", "ndjson", "csv", "arrow"):
        response = api.get("/data", params={**params, "format": name})
        assert response.status_code == 200, response.text
        assert rows_from(response) == expected, name


def test_arrow_schema_and_order(api):
    response = api.get(
        "/data",
        params={**ONE_DAY, "variables": ["power", "ambient_temperature"]},
        headers={"Accept": ARROW_MEDIA_TYPE},
    )
    assert response.headers["content-type"] == ARROW_MEDIA_TYPE
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.schema.names == ["turbine_id", "timestamp", "power", "ambient_temperature"]
    turbine, stamp = table.schema.field("turbine_id"), table.schema.field("timestamp")
    assert turbine.type == pa.dictionary(pa.int32(), pa.string()) and not turbine.nullable
    assert stamp.type == pa.timestamp("us", tz="UTC") and not stamp.nullable
    assert table.schema.field("power").type == pa.float64()
    assert set(table.column("turbine_id").to_pylist()) == {"WTG01"}
    stamps = table.column("timestamp").to_pylist()
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


@pytest.mark.parametrize(
    ("start", "end", "rows"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:10:00Z", 10),
        ("2024-01-01T00:00:00", "2024-01-01T00:10:00", 10),  # naive means UTC
        ("2024-01-01T02:00:00+02:00", "2024-01-01T02:10:00+02:00", 10),  # offsets converted
        ("2024-01-01", "2024-01-01T00:00:01Z", 1),
    ],
)
def test_half_open_ranges_and_time_zones(seed_source, serve_api, start, end, rows):
    seed_source(days=1)
    response = httpx.get(f"{serve_api()}/data", params={"start": start, "end": end})
    body = response.json()
    assert len(body) == rows
    assert body[0]["timestamp"] == "2024-01-01T00:00:00Z"
    assert list(body[0]) == ["turbine_id", "timestamp", *ALL]


def test_an_unencoded_plus_in_the_url_still_means_an_offset(seed_source, serve_api):
    seed_source(days=1)
    url = f"{serve_api()}/data?start=2024-01-01T02:00:00+02:00&end=2024-01-01T02:10:00+02:00"
    body = httpx.get(url).json()  # '+' arrives as a space
    assert [row["timestamp"] for row in body][::9] == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:09:00Z",
    ]


def test_a_whole_day_is_1440_rows(seed_source, serve_api):
    seed_source(days=3)
    response = httpx.get(f"{serve_api()}/data", params={**ONE_DAY, "format": "csv"})
    assert len(rows_from(response)) == 1440


def test_repeated_and_comma_separated_variables_agree(api):
    repeated = api.get("/data", params={**ONE_DAY, "variables": ["wind_speed", "power"]})
    commas = api.get("/data", params={**ONE_DAY, "variables": "wind_speed,power"})
    assert repeated.content == commas.content
    assert list(repeated.json()[0]) == ["turbine_id", "timestamp", "wind_speed", "power"]


def test_format_wins_over_accept_and_wildcards_get_json(api):
    csv_despite_accept = api.get(
        "/data", params={**ONE_DAY, "format": "csv"}, headers={"Accept": ARROW_MEDIA_TYPE}
    )
    assert csv_despite_accept.headers["content-type"].startswith("text/csv")
    for accept in ("*/*", "", "application/json;q=0.9, text/html"):
        response = api.get("/data", params=ONE_DAY, headers={"Accept": accept})
        assert response.headers["content-type"] == "application/json", accept
    ndjson = api.get("/data", params=ONE_DAY, headers={"Accept": "application/x-ndjson"})
    assert ndjson.headers["content-type"] == "application/x-ndjson"


ALLOWED = "allowed: ambient_temperature, nacelle_position, power, wind_direction, wind_speed"


BAD_INPUTS = [
    ({**ONE_DAY, "variables": "foo"}, 422, f"unknown variable(s): foo; {ALLOWED}"),
    (
        {**ONE_DAY, "variables": "power,foo,bar"},
        422,
        f"unknown variable(s): foo, bar; {ALLOWED}",
    ),
    ({**ONE_DAY, "variables": "metadata"}, 422, f"unknown variable(s): metadata; {ALLOWED}"),
    ({**ONE_DAY, "variables": "timestamp"}, 422, f"unknown variable(s): timestamp; {ALLOWED}"),
    (
        {**ONE_DAY, "variables": "wind_speed;DROP TABLE data"},
        422,
        f"unknown variable(s): wind_speed;DROP TABLE data; {ALLOWED}",
    ),
    ({"start": "2024-01-02", "end": "2024-01-01"}, 422, "must be after start"),
    ({"start": "2024-01-01", "end": "2024-01-01"}, 422, "must be after start"),
    ({"start": "yesterday", "end": "2024-01-01"}, 422, "malformed timestamp start='yesterday'"),
    ({"start": "2024-01-01", "end": "2024-13-01"}, 422, "malformed timestamp end="),
    ({"start": "1" * 400, "end": "2024-01-01"}, 422, "malformed timestamp start='1111"),
    ({"start": "2024-01-01T00:00:00.1234567Z", "end": "2024-01-02"}, 422, "malformed"),
    ({"start": "0001-01-01", "end": "2024-01-01"}, 422, "start='0001-01-01' is out of range"),
    ({"start": "0000-01-01", "end": "2024-01-01"}, 422, "start='0000-01-01' is out of range"),
    ({"start": "2024-01-01", "end": "9999-12-31T23:00:00-05:00"}, 422, "is out of range"),
    ({**ONE_DAY, "variable": "power"}, 422, "unknown parameter(s): variable; allowed: start"),
    ({**ONE_DAY, "turbines": "WTG09"}, 422, "unknown turbine(s): WTG09; allowed: WTG01"),
    ({"end": "2024-01-01"}, 422, "missing parameter: start"),
    ({}, 422, "missing parameter: start"),
    (
        {**ONE_DAY, "format": "xml"},
        422,
        "unknown format 'xml'; allowed: json, ndjson, csv, arrow",
    ),
]


def test_bad_input_names_the_problem_and_the_allowed(api):
    for params, status, message in BAD_INPUTS:
        response = api.get("/data", params=params)
        assert response.status_code == status, params
        assert message in response.json()["detail"], params


def test_bad_input_leaves_the_table_alone(api, source_url):
    api.get("/data", params={**ONE_DAY, "variables": "wind_speed;DROP TABLE data"})
    assert len(source_rows(source_url, ["power"], "2024-01-01", "2024-01-03")) > 2000


def test_unknown_accept_is_406_with_the_allowed_types(api):
    response = api.get("/data", params=ONE_DAY, headers={"Accept": "application/xml"})
    assert response.status_code == 406
    assert "application/vnd.apache.arrow.stream" in response.json()["detail"]


def test_variables_describe_each_column(api):
    body = {v["name"]: v for v in api.get("/variables").json()}
    assert list(body) == ALL
    assert body["wind_speed"]["unit"] == "m/s"
    assert (body["power"]["physical_min"], body["power"]["physical_max"]) == (-150.0, 3450.0)
    assert [body[name]["max_step"] for name in ALL] == [10.0, 1500.0, 5.0, 90.0, 30.0]
    assert body["ambient_temperature"]["unit"] == "°C"


def test_a_new_numeric_column_becomes_a_variable(seed_source, source_url, serve_api):
    seed_source(days=1)
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE data ADD COLUMN rotor_speed real, ADD COLUMN note text")
        cur.execute("UPDATE data SET rotor_speed = 12.5")
    base = serve_api()
    variables = httpx.get(f"{base}/variables").json()
    assert [v["name"] for v in variables] == [*ALL, "rotor_speed"]
    assert variables[-1]["unit"] is None and variables[-1]["max_step"] is None
    rows = httpx.get(f"{base}/data", params={**ONE_DAY, "variables": "rotor_speed"}).json()
    assert len(rows) == 1440 and rows[0]["rotor_speed"] == 12.5


def test_csv_quotes_a_column_name_as_rfc_4180_says(seed_source, source_url, serve_api):
    """A comma or a quote in a column name: the header is quoted, every line has as many
    fields as the header, and the csv module reads back the names and the values."""
    seed_source(days=1)
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute('ALTER TABLE data ADD COLUMN "gust,max" double precision')
        cur.execute('ALTER TABLE data ADD COLUMN "say ""hi""" real')
        cur.execute('UPDATE data SET "gust,max" = wind_speed * 1.5, "say ""hi""" = 2.5')
    response = httpx.get(f"{serve_api()}/data", params={**ONE_DAY, "format": "csv"})
    assert response.status_code == 200
    header_line = response.text.split("\n", 1)[0]
    assert header_line == (
        "turbine_id,timestamp,wind_speed,power,ambient_temperature,wind_direction,"
        'nacelle_position,"gust,max","say ""hi"""'
    )
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == ["turbine_id", "timestamp", *ALL, "gust,max", 'say "hi"']
    assert len(lines) == 1441 and {len(line) for line in lines} == {9}
    for line in lines[1:]:
        speed, gust = line[2], line[7]
        assert (gust == "") == (speed == "")
        if speed:
            assert float(gust) == pytest.approx(float(speed) * 1.5, rel=1e-12)
        assert line[8] == "2.5"


def test_health_reports_the_range(api):
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"]) == ("ok", "reachable")
    assert body["first_timestamp"] == "2024-01-01T00:00:00Z"
    assert body["last_timestamp"] <= "2024-01-02T23:59:00Z"


def test_unreachable_database_is_503(serve_api):
    base = serve_api(database_url="postgresql+psycopg2://postgres@127.0.0.1:1/source")
    health = httpx.get(f"{base}/health", timeout=30)
    assert health.status_code == 503 and health.json()["database"] == "unreachable"
    data = httpx.get(f"{base}/data", params=ONE_DAY, timeout=30)
    assert data.status_code == 503 and "unavailable" in data.json()["detail"]


def test_missing_table_is_503_until_seeded(seed_source, serve_api):
    base = serve_api()
    health = httpx.get(f"{base}/health")
    assert health.status_code == 503 and health.json()["table"] == "missing"
    data = httpx.get(f"{base}/data", params=ONE_DAY)
    assert data.status_code == 503 and "connector-api seed" in data.json()["detail"]

    seed_source(days=1)

    assert httpx.get(f"{base}/health").status_code == 200
    assert len(httpx.get(f"{base}/data", params=ONE_DAY).json()) == 1440


def test_api_key(seed_source, serve_api):
    seed_source(days=1)
    base = serve_api(api_key="s3cret")
    for path, params in (("/data", ONE_DAY), ("/variables", {})):
        assert httpx.get(base + path, params=params).status_code == 401
        wrong = httpx.get(base + path, params=params, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["detail"]
        right = httpx.get(base + path, params=params, headers={"X-API-Key": "s3cret"})
        assert right.status_code == 200
    assert httpx.get(f"{base}/health").status_code == 200
    assert httpx.get(f"{base}/docs").status_code == 200
    assert httpx.get(f"{base}/openapi.json").status_code == 200


def test_no_key_configured_means_open(api):
    assert api.get("/variables").status_code == 200


def test_openapi_has_an_example_for_every_parameter(api):
    schema = api.get("/openapi.json").json()
    parameters = schema["paths"]["/data"]["get"]["parameters"]
    assert {p["name"] for p in parameters} == {"start", "end", "variables", "turbines", "format"}
    for parameter in parameters:
        assert parameter["schema"].get("examples") or parameter.get("example"), parameter["name"]
    assert api.get("/docs").status_code == 200


def test_starting_the_api_twice_keeps_the_data(seed_source, source_url, serve_api):
    seed_source(days=1)

    def table_state():
        with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT 'data'::regclass::oid, count(*) FROM data")
            return cur.fetchone()

    before = table_state()
    for _ in range(2):
        assert httpx.get(f"{serve_api()}/health").status_code == 200
    assert table_state() == before


def test_large_ranges_stream_in_bounded_chunks(seed_source, serve_api, monkeypatch):
    """Smaller chunks make the check fast: 5 days in 2-hour chunks, all rows, none twice."""
    monkeypatch.setattr(data_route, "CHUNK_ROWS", 120)
    seed_source(days=5, faults=True)
    base = serve_api()
    params = {"start": "2024-01-01", "end": "2024-01-06"}

    arrow = httpx.get(f"{base}/data", params={**params, "format": "arrow"})
    reader = pa.ipc.open_stream(arrow.content)
    batches = list(reader)
    assert all(batch.num_rows <= 120 for batch in batches)
    json_rows = httpx.get(f"{base}/data", params=params).json()
    assert sum(b.num_rows for b in batches) == len(json_rows) > 5 * 1440 - 500
    assert len(batches) >= len(json_rows) // 120
    stamps = [r["timestamp"] for r in json_rows]
    assert stamps == sorted(set(stamps))


def test_a_large_range_without_rows_streams_an_empty_body(api):
    """Streamed (a range of more rows than a chunk could hold) and empty: still well-formed."""
    params = {"start": "2030-01-01", "end": "2030-03-01"}
    assert api.get("/data", params=params).json() == []
    assert api.get("/data", params={**params, "format": "csv"}).text == (
        "turbine_id,timestamp,wind_speed,power,ambient_temperature,wind_direction,"
        "nacelle_position\n"
    )
    arrow = api.get("/data", params={**params, "format": "arrow"})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.num_rows == 0 and table.schema.names[:2] == ["turbine_id", "timestamp"]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def test_a_year_streams_in_bounded_memory(seed_source, source_url):
    """One year of JSON from a `connector-api serve` process: first bytes long before the last,
    in many pieces, all rows, and the server's peak memory grows by far less than the body
    (the year as Python rows would be several hundred MB)."""
    seed_source(start=DAY, days=365)
    port = free_port()
    cli = str(Path(sys.executable).with_name("connector-api"))
    server = subprocess.Popen(
        [cli, "serve", "--port", str(port), "--database-url", source_url, "--log-level", "error"]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/data", params=ONE_DAY).raise_for_status()  # warm every import
                break
            except httpx.TransportError:
                time.sleep(0.05)
        before = peak_rss_mb(server.pid)
        params = {"start": "2024-01-01", "end": str(DAY + timedelta(days=365))}
        began = time.perf_counter()
        pieces, rows, first_byte = 0, 0, None
        with httpx.stream("GET", f"{base}/data", params=params, timeout=120) as response:
            assert response.status_code == 200
            for piece in response.iter_raw():
                first_byte = first_byte or time.perf_counter() - began
                pieces += 1
                rows += piece.count(b"}")  # one per row object; never split
        total = time.perf_counter() - began
        growth = peak_rss_mb(server.pid) - before
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert rows == 365 * 1440  # never truncated
    assert pieces >= 10
    assert first_byte < total / 3, (first_byte, total)
    assert growth < 120, f"server peak memory grew by {growth:.0f} MB"


def test_the_api_connections_cannot_write(seed_source, source_url):
    seed_source(days=1)
    pool = db.create_pool(source_url)
    try:
        with db.raw_connection(pool) as conn, pytest.raises(db.ERRORS, match="read-only"):
            db.fetch(conn, "DELETE FROM data RETURNING 1")
        with db.raw_connection(pool) as conn:
            ((timeout,),) = db.fetch(
                conn, "SELECT current_setting('idle_in_transaction_session_timeout')"
            )
        assert timeout == "1min"  # the backstop for a session left in a transaction
    finally:
        pool.dispose()
    assert len(source_rows(source_url, ["power"], *ONE_DAY.values())) == 1440


def test_the_api_recovers_when_its_connections_are_killed(seed_source, source_url, serve_api):
    """A restarted database: idle connections are pinged, a failed one is never reused."""
    seed_source(days=1)
    base = serve_api()
    assert httpx.get(f"{base}/data", params=ONE_DAY).status_code == 200

    def kill_api_connections():
        with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    kill_api_connections()
    time.sleep(db.IDLE_PING_SECONDS + 0.1)
    assert httpx.get(f"{base}/data", params=ONE_DAY).status_code == 200

    kill_api_connections()
    first = httpx.get(f"{base}/data", params=ONE_DAY)  # used at once: may fail, as a 503
    assert first.status_code in (200, 503)
    assert httpx.get(f"{base}/data", params=ONE_DAY).status_code == 200


def test_json_objects_keep_odd_names_and_exact_times(seed_source, source_url, serve_api):
    """Column names holding a comma, a quote, a brace sequence and a percent sign, a range across
    midnight, then a reading off the minute grid: every JSON and NDJSON object has the names in
    table order and SQL's values and times, on the grid and off it."""
    seed_source(days=2)
    odd = ["gust,max", 'say "hi"', "a},{b", "50%"]
    quoted = ['"' + name.replace('"', '""') + '"' for name in odd]
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        for factor, column in enumerate(quoted, start=2):
            cur.execute(f"ALTER TABLE data ADD COLUMN {column} double precision")
            cur.execute(f"UPDATE data SET {column} = wind_speed * {factor}")
    base = serve_api()
    window = {"start": "2024-01-01T23:50:00Z", "end": "2024-01-02T00:10:00Z"}
    for off_grid in (False, True):
        if off_grid:
            with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO data (turbine_id, timestamp, wind_speed, power)"
                    " VALUES ('WTG01', '2024-01-01T23:59:30Z', 7.25, 812.5)"
                )
        selected = [*ALL, *(column.replace("%", "%%") for column in quoted)]  # psycopg2's %
        expected = source_rows(source_url, selected, *window.values())
        assert len(expected) == 20 + off_grid
        for name in ("json", "ndjson"):
            response = httpx.get(f"{base}/data", params={**window, "format": name})
            assert response.status_code == 200
            lines = response.content.splitlines()
            first = orjson.loads(lines[0]) if name == "ndjson" else response.json()[0]
            assert list(first) == ["turbine_id", "timestamp", *ALL, *odd], name
            assert rows_from(response) == expected, (name, off_grid)
