"""The connector client: retry rules (mock transport), then the real API over HTTP."""

import re
from datetime import UTC, datetime

import httpx
import pyarrow as pa
import pytest

from wind_pipeline.etl.client import ConnectorClient
from wind_pipeline.etl.errors import (
    ApiRejectedError,
    ApiUnavailableError,
    InvalidInputError,
    TerminalError,
    TransientError,
)
from wind_pipeline.etl.extract import extract, raw_schema
from wind_pipeline.etl.retries import MAX_BACKOFF, backoff_delay
from wind_pipeline_tests.ports import free_port as closed_port

START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)


def arrow_body(rows: int = 2) -> bytes:
    table = pa.table(
        {
            "turbine_id": pa.array(["WTG01"] * rows).dictionary_encode(),
            "timestamp": pa.array([i * 60_000_000 for i in range(rows)], pa.timestamp("us", "UTC")),
            "wind_speed": pa.array([1.0] * rows),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def scripted(*answers):
    """A mock transport answering with ``answers`` in turn; counts the requests it saw."""
    seen = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def client_with(transport, sleeps, **options):
    return ConnectorClient("http://api", transport=transport, sleep=sleeps.append, **options)


def test_5xx_and_connection_errors_are_retried_with_growing_waits():
    transport, seen = scripted(
        httpx.ConnectError("refused"),
        httpx.Response(503, json={"detail": "database unreachable"}),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, content=arrow_body(3)),
    )
    sleeps = []
    table = client_with(transport, sleeps, backoff=1.0).fetch(START, END, ["wind_speed"])
    assert table.num_rows == 3 and len(seen) == 4
    assert [0.5 <= s <= 1 for s in sleeps] == [True, False, False]  # jitter: [0.5, 1] x 2^i
    assert 1 <= sleeps[1] <= 2 and 2 <= sleeps[2] <= 4


def test_gives_up_after_the_retries_with_a_transient_error():
    transport, seen = scripted(httpx.Response(500, json={"detail": "boom"}))
    sleeps = []
    with pytest.raises(ApiUnavailableError, match=r"after 3 attempts \(HTTP 500: boom\)") as caught:
        client_with(transport, sleeps, retries=2).fetch(START, END, ["wind_speed"])
    assert isinstance(caught.value, TransientError) and len(seen) == 3 and len(sleeps) == 2


def test_a_4xx_is_not_retried_and_keeps_the_detail():
    transport, seen = scripted(httpx.Response(422, json={"detail": "unknown variable(s): x"}))
    sleeps = []
    with pytest.raises(ApiRejectedError, match="unknown variable") as caught:
        client_with(transport, sleeps).fetch(START, END, ["x"])
    assert (caught.value.status, len(seen), sleeps) == (422, 1, [])


def test_the_request_carries_the_contract():
    transport, seen = scripted(httpx.Response(200, content=arrow_body()))
    client = ConnectorClient("http://api/", api_key="k", transport=transport)
    client.fetch(START, END, ["wind_speed"], ["WTG01", "WTG02"])
    client.fetch(START, END, ["wind_speed"])
    request = seen[0]
    assert request.url.path == "/data"
    assert dict(request.url.params) == {
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-02T00:00:00Z",
        "variables": "wind_speed",
        "turbines": "WTG01,WTG02",
    }
    assert "turbines" not in seen[1].url.params  # None: every turbine
    assert request.headers["accept"] == "application/vnd.apache.arrow.stream"
    assert request.headers["x-api-key"] == "k"


def test_get_json_asks_for_json_with_the_same_retry_rules():
    transport, seen = scripted(
        httpx.ConnectError("refused"), httpx.Response(200, json=[{"id": "WTG01"}])
    )
    sleeps = []
    assert client_with(transport, sleeps).get_json("/turbines") == [{"id": "WTG01"}]
    assert seen[-1].headers["accept"] == "application/json" and len(sleeps) == 1


def test_an_answer_with_other_columns_is_terminal():
    table = pa.table({"timestamp": pa.array([0], pa.timestamp("us", "UTC"))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    transport, _ = scripted(httpx.Response(200, content=sink.getvalue().to_pybytes()))
    with pytest.raises(TerminalError, match="answered columns"):
        client_with(transport, []).fetch(START, END, ["wind_speed"])


def test_backoff_is_capped():
    assert all(MAX_BACKOFF / 2 <= backoff_delay(20, 0.5) <= MAX_BACKOFF for _ in range(50))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("127.0.0.1:8000", "no http(s) scheme or host"),
        ("ftp://api", "no http(s) scheme or host"),
        ("http://127.0.0.1:70000", "port 70000 is out of range"),
    ],
)
def test_a_malformed_base_url_is_refused_before_any_request(url, problem):
    with pytest.raises(InvalidInputError, match=re.escape(problem)):
        ConnectorClient(url)


def test_an_api_that_is_down_is_retried_then_reported():
    sleeps = []
    client = ConnectorClient(f"http://127.0.0.1:{closed_port()}", retries=3, sleep=sleeps.append)
    with client, pytest.raises(ApiUnavailableError, match="after 4 attempts") as caught:
        client.fetch(START, END, ["wind_speed"])
    assert len(sleeps) == 3 and sleeps[2] >= 2 * 0.5 * 0.5  # the third wait is >= 0.5 x 2^2 / 2
    assert "ConnectError" in str(caught.value)


def test_the_real_api_serves_a_fleet_that_extract_turns_into_raw(seed_source, serve_api):
    seed_source(days=1, turbines=3, faults=True)
    with ConnectorClient(serve_api()) as client:
        raw = extract(client, START, END, ["wind_speed", "power"], ["WTG03", "WTG01"])
    assert raw.schema == raw_schema(["wind_speed", "power"])
    ids = raw.column("turbine_id").to_pylist()
    assert set(ids) == {"WTG01", "WTG03"}
    keys = list(zip(ids, raw.column("timestamp").to_pylist(), strict=True))
    assert keys == sorted(keys)  # (turbine_id, timestamp)
    assert 2 * 1300 < raw.num_rows < 2 * 1440  # the faults removed some minutes
    assert raw.column("wind_speed").null_count > 0  # NULL runs arrive as NULL


def test_the_real_api_rejects_an_unknown_variable_once(seed_source, serve_api):
    seed_source(days=1)
    sleeps = []
    client = ConnectorClient(serve_api(), sleep=sleeps.append)
    with client, pytest.raises(ApiRejectedError, match=r"allowed: .*wind_speed") as caught:
        client.fetch(START, END, ["wind_speed", "gust"])
    assert caught.value.status == 422 and "gust" in caught.value.detail and sleeps == []


def test_the_real_api_wants_its_key(seed_source, serve_api):
    seed_source(days=1)
    base = serve_api(api_key="secret")
    with ConnectorClient(base) as client, pytest.raises(ApiRejectedError, match="401") as caught:
        client.fetch(START, END, ["power"])
    assert "CONNECTOR_API_KEY" in str(caught.value)
    with ConnectorClient(base, api_key="secret") as client:
        assert client.fetch(START, END, ["power"]).num_rows == 1440


def test_an_empty_window_is_an_empty_raw_table(seed_source, serve_api):
    seed_source(days=1)
    later = datetime(2025, 1, 1, tzinfo=UTC)
    with ConnectorClient(serve_api()) as client:
        raw = extract(client, later, later.replace(day=2), ["power"])
    assert raw.num_rows == 0 and raw.schema == raw_schema(["power"])
