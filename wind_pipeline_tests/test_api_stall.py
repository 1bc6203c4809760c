"""Clients that stall or hang up mid-stream cannot take the API down (issue 9, item 7).

Thirty clients start a large download over loopback: some stop reading, some hang up after the
first bytes. Meanwhile another client is answered every time (no 503, /health 200), and soon
after, none of their database sessions is left open.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg2
import pytest

from connector_api import db
from connector_api.app import create_app
from connector_api.routes import data as data_route
from connector_api.settings import Settings
from wind_pipeline_tests.conftest import serve

STALL_TIMEOUT = 2.0
DAYS = 90  # 129,600 rows, about 12 MB of JSON: far more than the socket buffers hold
LARGE = "/data?start=2024-01-01&end=2024-03-31&format=json"
ONE_DAY = {"start": "2024-01-01", "end": "2024-01-02"}


@pytest.fixture
def api(seed_source, source_url, monkeypatch) -> Iterator[str]:
    seed_source(days=DAYS)
    monkeypatch.setattr(data_route, "CHUNK_ROWS", 10_000)  # many chunks per download
    settings = Settings(database_url=source_url, stall_timeout_seconds=STALL_TIMEOUT)
    with serve(create_app(settings)) as base:
        yield base


def api_sessions(source_url: str) -> list[tuple[str, str]]:
    """(application_name, state) of every session on the test's source database but ours."""
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT application_name, state FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return cur.fetchall()


def open_download(base: str) -> socket.socket:
    """A raw client that asks for the large range with a tiny receive window."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {LARGE} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def read_to_end(sock: socket.socket, limit_seconds: float) -> bytes:
    received = bytearray()
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(1 << 20)
        except (ConnectionResetError, TimeoutError):
            break
        if not piece:
            break
        received += piece
    return bytes(received)


def test_stalled_and_departed_clients_release_their_sessions(api, source_url):
    departed = [open_download(api) for _ in range(10)]
    for sock in departed:  # take the first bytes, then hang up mid-stream
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.close()
    # As many as the API streams at once (Settings.max_streams, 20) then stop reading.
    stalled = [open_download(api) for _ in range(20)]
    for sock in stalled:
        assert sock.recv(64).startswith(b"HTTP/1.1 200")  # each reads a little, then stops

    # While they hold their streams, another client is answered every time.
    seen_streams = 0
    answered = 0
    with httpx.Client(base_url=api, timeout=10) as client:
        deadline = time.monotonic() + 3 * STALL_TIMEOUT
        while time.monotonic() < deadline and answered < 200:
            day = client.get("/data", params=ONE_DAY)
            health = client.get("/health")
            assert day.status_code == 200, day.text
            assert len(day.json()) == 1440
            assert health.status_code == 200 and health.json()["database"] == "reachable"
            answered += 1
            names = [name for name, _ in api_sessions(source_url)]
            seen_streams = max(seen_streams, names.count(db.STREAM_APPLICATION_NAME))
    assert answered >= 5
    assert seen_streams >= 1  # the downloads did hold streams meanwhile

    # Soon after, no stream session is left and nothing is idle in a transaction.
    deadline = time.monotonic() + 5 * STALL_TIMEOUT
    while time.monotonic() < deadline:
        sessions = api_sessions(source_url)
        names = [name for name, _ in sessions]
        if db.STREAM_APPLICATION_NAME not in names:
            break
        time.sleep(0.2)
    assert db.STREAM_APPLICATION_NAME not in names, sessions
    assert not [s for s in sessions if s[1] != "idle"], sessions

    # A stalled client that reads again gets a broken transfer, never a complete-looking one.
    body = read_to_end(stalled[0], limit_seconds=10)
    assert not body.endswith(b"0\r\n\r\n")
    for sock in stalled:
        sock.close()

    # And the API serves a whole large download again.
    with httpx.Client(base_url=api, timeout=60) as client:
        rows = client.get(LARGE).json()
    assert len(rows) == DAYS * 1440  # 2024-01-01 to 2024-03-31 (end exclusive): 90 days


def test_a_slow_reader_is_not_a_stalled_one(api):
    """Pauses shorter than the stall timeout, repeatedly: the download completes."""
    with (
        httpx.Client(base_url=api, timeout=30) as client,
        client.stream("GET", LARGE) as response,
    ):
        assert response.status_code == 200
        received, pauses = bytearray(), 0
        for piece in response.iter_bytes():
            received += piece
            if pauses < 3 and len(received) > (pauses + 1) * 2_000_000:
                time.sleep(STALL_TIMEOUT * 0.75)
                pauses += 1
    assert pauses == 3
    assert received.endswith(b"}]") and received.count(b"}") == DAYS * 1440


def test_beyond_the_stream_limit_a_download_is_told_to_retry(seed_source, source_url, monkeypatch):
    """One stream slot, held by a slow but steady reader: a second large download waits for
    the stall timeout, then gets 503 with Retry-After naming the limit; small reads go on."""
    seed_source(days=DAYS)
    monkeypatch.setattr(data_route, "CHUNK_ROWS", 10_000)
    settings = Settings(database_url=source_url, stall_timeout_seconds=STALL_TIMEOUT, max_streams=1)
    started, held = threading.Event(), {}

    def slow_reader(base: str) -> None:
        with httpx.stream("GET", base + LARGE, timeout=30) as response:
            held["status"] = response.status_code
            received = 0
            for piece in response.iter_bytes():
                received += len(piece)
                started.set()
                time.sleep(0.03)  # about 2 MB/s: slow, never stalled
            held["bytes"] = received

    with serve(create_app(settings)) as base:
        holder = threading.Thread(target=slow_reader, args=(base,))
        holder.start()
        try:
            assert started.wait(10)
            began = time.monotonic()
            refused = httpx.get(base + LARGE, timeout=30)
            waited = time.monotonic() - began
            small = httpx.get(base + "/data", params=ONE_DAY, timeout=10)
        finally:
            holder.join(timeout=60)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert "already streaming 1 large ranges at once" in refused.json()["detail"]
        assert waited >= STALL_TIMEOUT * 0.9
        assert small.status_code == 200
        assert held == {"status": 200, "bytes": held["bytes"]} and held["bytes"] > 10_000_000
        assert len(httpx.get(base + LARGE, timeout=30).json()) == DAYS * 1440  # free again


def test_a_stream_read_to_the_end_leaves_its_connection_for_the_next(api, source_url):
    """Streams draw on a pool (a new ADBC connection reads the type catalogue, ~50 ms): two
    downloads one after the other use one session, kept idle; a hung-up one's is closed."""

    def stream_pids() -> list[int]:
        with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = 'idle'",
                (db.STREAM_APPLICATION_NAME,),
            )
            return [pid for (pid,) in cur.fetchall()]

    with httpx.Client(base_url=api, timeout=60) as client:
        assert len(client.get(LARGE).json()) == DAYS * 1440
        first = stream_pids()
        assert len(client.get(LARGE).json()) == DAYS * 1440
        assert stream_pids() == first and len(first) == 1

    sock = open_download(api)  # hangs up after the first bytes: that session is not kept
    assert sock.recv(64).startswith(b"HTTP/1.1 200")
    sock.close()
    deadline = time.monotonic() + 5 * STALL_TIMEOUT
    while time.monotonic() < deadline and stream_pids() != []:
        time.sleep(0.2)
    assert stream_pids() == []  # the pooled one served the hung-up stream and went with it
