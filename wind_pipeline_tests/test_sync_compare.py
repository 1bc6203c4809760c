"""The compare behind ``wind-etl sync`` and the sensor, on constructed inputs; the rules digest;
``GET /days`` parsed by the client (the route's contract served over real HTTP)."""

import dataclasses
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from wind_pipeline.etl.catalogue import Variable
from wind_pipeline.etl.client import ConnectorClient
from wind_pipeline.etl.errors import InvalidInputError, TerminalError
from wind_pipeline.etl.record import LoadedRecord
from wind_pipeline.etl.rules import RULES_VERSION, rules_digest
from wind_pipeline.etl.sync import (
    Change,
    changed_ranges,
    changes,
    day_lines,
    default_window,
    lookback_days,
    turbines_by_day,
)
from wind_pipeline.etl.versions import SourceDay, day_version, parse_days
from wind_pipeline_tests.http_receiver import receiver

D1, D2, D3, D4 = (date(2026, 11, d) for d in (1, 2, 3, 4))
AT = datetime(2026, 12, 1, tzinfo=UTC)


def row(day, turbine, version, readings=1440):
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return SourceDay(
        day, turbine, readings, start, start + timedelta(minutes=readings - 1), version
    )


def record(day, turbine, version, readings=1440, rules="r"):
    return LoadedRecord(day, turbine, version, readings, ("power",), True, rules, AT, None)


def found(*args, **kwargs):
    return [
        (c.day, c.turbine, c.reason, c.old_version, c.new_version) for c in changes(*args, **kwargs)
    ]


def test_each_reason_and_nothing_else():
    source = [
        row(D1, "A", "v1"),  # same version, same rules: nothing
        row(D1, "B", "v2"),  # changed
        row(D2, "A", "v1"),  # new
        row(D3, "A", "v1"),  # rules changed
        row(D4, "A", "v5"),  # a recorded empty day that got readings: new
    ]
    records = [
        record(D1, "A", "v1"),
        record(D1, "B", "v1"),
        record(D2, "B", "v1"),  # retracted
        record(D3, "A", "v1", rules="old"),
        record(D3, "B", None, readings=0),  # loaded empty, still empty: nothing
        record(D4, "A", None, readings=0),
    ]
    assert found(source, records, first=D1, last=D4, rules="r") == [
        (D1, "B", "changed", "v1", "v2"),
        (D2, "A", "new", None, "v1"),
        (D2, "B", "retracted", "v1", None),
        (D3, "A", "rules changed", "v1", "v1"),
        (D4, "A", "new", None, "v5"),
    ]


def test_a_new_version_wins_over_new_rules_and_an_unknown_version_is_changed():
    source = [row(D1, "A", "v2"), row(D2, "A", "v1")]
    records = {(D1, "A"): record(D1, "A", "v1", rules="old"), (D2, "A"): record(D2, "A", None)}
    assert found(source, records, first=D1, last=D2, rules="r") == [
        (D1, "A", "changed", "v1", "v2"),
        (D2, "A", "changed", None, "v1"),
    ]
    assert Change(D2, "A", "changed", None, "v1").describe() == "changed unknown → v1"


def test_the_window_and_the_turbines_bound_the_compare():
    source = [row(d, t, "v") for d in (D1, D2, D3) for t in ("A", "B")]
    assert found(source, [], first=D2, last=D2, turbines=["B"], rules="r") == [
        (D2, "B", "new", None, "v")
    ]
    records = [record(D1, "A", "v"), record(D3, "B", "v")]  # both gone from the source
    assert found([], records, first=D2, last=D2, rules="r") == []
    assert found([], records, first=D1, last=D3, turbines=["A"], rules="r") == [
        (D1, "A", "retracted", "v", None)
    ]
    assert found([], [], first=D1, last=D4, rules="r") == []


def test_contiguous_days_group_into_ranges_with_the_union_of_turbines():
    found_ = [
        Change(D1, "B", "new", None, "v"),
        Change(D2, "A", "changed", "v1", "v2"),
        Change(D4, "C", "retracted", "v", None),
        Change(D1, "A", "new", None, "v"),
    ]
    ranges = changed_ranges(found_)
    assert [(r.first, r.last, r.turbines, r.reasons, len(r.changes)) for r in ranges] == [
        (D1, D2, ("A", "B"), ("new", "changed"), 3),
        (D4, D4, ("C",), ("retracted",), 1),
    ]
    assert changed_ranges([]) == []
    assert turbines_by_day(found_) == {D1: ("A", "B"), D2: ("A",), D4: ("C",)}


def test_one_line_per_day_with_the_reason():
    lines = day_lines(
        [
            Change(D1, "WTG02", "new", None, "v"),
            Change(D1, "WTG01", "new", None, "v"),
            Change(D1, "WTG03", "changed", "a1", "b2"),
            Change(D2, "WTG01", "rules changed", "v", "v"),
            Change(D3, "WTG01", "retracted", "v", None),
        ]
    )
    assert lines == [
        "2026-11-01: WTG01, WTG02 new; WTG03 changed a1 → b2",
        "2026-11-02: WTG01 rules changed",
        "2026-11-03: WTG01 retracted",
    ]


def test_fifty_turbines_by_thirty_days_compare_in_a_few_milliseconds():
    days = [D1 + timedelta(days=i) for i in range(30)]
    turbines = [f"WTG{i:02d}" for i in range(1, 51)]
    source = [row(d, t, f"v{d.day}") for d in days for t in turbines]
    records = {(d, t): record(d, t, f"v{d.day}") for d in days for t in turbines}
    records[(days[7], "WTG09")] = record(days[7], "WTG09", "old")
    best = float("inf")
    for _ in range(5):  # the best of five: the machine is shared
        began = time.perf_counter()
        result = changes(source, records, first=days[0], last=days[-1], rules="r")
        best = min(best, time.perf_counter() - began)
    assert [(c.day, c.turbine, c.reason) for c in result] == [(days[7], "WTG09", "changed")]
    assert best < 0.005, f"{best * 1000:.2f} ms"


def test_the_default_window_is_the_lookback_ending_yesterday(monkeypatch):
    monkeypatch.delenv("WIND_PIPELINE_SYNC_LOOKBACK_DAYS", raising=False)
    assert lookback_days() == 30
    assert default_window(date(2026, 12, 2)) == (date(2026, 11, 2), date(2026, 12, 1))
    monkeypatch.setenv("WIND_PIPELINE_SYNC_LOOKBACK_DAYS", "3")
    assert default_window(date(2026, 12, 2)) == (date(2026, 11, 29), date(2026, 12, 1))
    for bad in ("0", "-2", "week"):
        monkeypatch.setenv("WIND_PIPELINE_SYNC_LOOKBACK_DAYS", bad)
        with pytest.raises(InvalidInputError, match="WIND_PIPELINE_SYNC_LOOKBACK_DAYS"):
            lookback_days()


SPEED = Variable("wind_speed", "m/s", "speed", 0.0, 60.0, 15.0)
POWER = Variable("power", "kW", "power", -50.0, 2500.0, None)


def test_the_rules_digest_follows_the_limits_and_nothing_else():
    base = rules_digest({"wind_speed": SPEED, "power": POWER}, True)
    assert base.startswith(f"r{RULES_VERSION}-") and len(base) == len(f"r{RULES_VERSION}-") + 16
    assert rules_digest({"power": POWER, "wind_speed": SPEED}, True) == base  # order-free
    renamed = dataclasses.replace(SPEED, unit="km/h", description="other words")
    assert rules_digest({"wind_speed": renamed, "power": POWER}, True) == base
    as_ints = dataclasses.replace(SPEED, physical_min=0, physical_max=60, max_step=15)
    assert rules_digest({"wind_speed": as_ints, "power": POWER}, True) == base
    for changed in (
        dataclasses.replace(SPEED, physical_max=50.0),
        dataclasses.replace(SPEED, physical_min=None),
        dataclasses.replace(SPEED, max_step=10.0),
    ):
        assert rules_digest({"wind_speed": changed, "power": POWER}, True) != base
    assert rules_digest({"wind_speed": SPEED}, True) != base  # another selection
    assert rules_digest({"wind_speed": SPEED, "power": POWER}, False) != base
    off = rules_digest({"wind_speed": dataclasses.replace(SPEED, physical_max=1.0)}, False)
    assert off == rules_digest({"wind_speed": SPEED}, False)  # QC off: no limit judges


def test_a_field_added_to_variable_joins_the_digest_without_a_change_to_rules():
    @dataclasses.dataclass(frozen=True)
    class Described(Variable):
        kind: str = "linear"
        frozen_exempt: tuple[float, ...] = ()

    linear = Described(**dataclasses.asdict(SPEED))
    circular = dataclasses.replace(linear, kind="circular")
    exempt = dataclasses.replace(linear, frozen_exempt=(0.0,))
    digests = {rules_digest({"wind_speed": v}, True) for v in (linear, circular, exempt)}
    assert len(digests) == 3


DAYS_BODY = [
    {
        "day": "2026-11-30",
        "turbine_id": "WTG01",
        "readings": 1440,
        "first_timestamp": "2026-11-30T00:00:00Z",
        "last_timestamp": "2026-11-30T23:59:00Z",
        "version": "17:abc",
    },
    {
        "day": "2026-11-30",
        "turbine_id": "WTG02",
        "readings": 3,
        "first_timestamp": "2026-11-30T09:00:00Z",
        "last_timestamp": "2026-11-30T09:02:00Z",
        "version": "4",
    },
]


def test_the_client_reads_get_days_over_http():
    """Against the route's JSON contract served by a plain HTTP server (the real route is tested
    with the served connector API once it exists in this branch)."""
    with receiver(answer=DAYS_BODY) as api, ConnectorClient(api.url, retries=0) as client:
        rows = client.days(date(2026, 11, 29), date(2026, 11, 30), ["WTG01", "WTG02"])
    assert rows == [
        SourceDay(
            date(2026, 11, 30),
            "WTG01",
            1440,
            datetime(2026, 11, 30, tzinfo=UTC),
            datetime(2026, 11, 30, 23, 59, tzinfo=UTC),
            "17:abc",
        ),
        SourceDay(
            date(2026, 11, 30),
            "WTG02",
            3,
            datetime(2026, 11, 30, 9, tzinfo=UTC),
            datetime(2026, 11, 30, 9, 2, tzinfo=UTC),
            "4",
        ),
    ]
    (request,) = api.requests
    assert request.method == "GET"
    # Inclusive last day → the API's half-open end.
    assert request.path == "/days?start=2026-11-29&end=2026-12-01&turbines=WTG01%2CWTG02"


@pytest.mark.parametrize(
    "body", [{"day": "x"}, [{"day": "2026-11-30"}], [{**DAYS_BODY[0], "day": "30/11/2026"}]]
)
def test_a_malformed_days_answer_is_a_clear_terminal_error(body):
    with pytest.raises(TerminalError, match="/days answer is malformed"):
        parse_days(body)


def test_a_days_version_covers_its_turbines_in_any_order():
    one = day_version([("WTG01", "a"), ("WTG02", "b")])
    assert one == day_version([("WTG02", "b"), ("WTG01", "a")])
    assert one != day_version([("WTG01", "a"), ("WTG02", "c")])
    assert day_version([]) == "empty"
