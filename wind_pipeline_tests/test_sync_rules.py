"""What else makes ``wind-etl sync`` reload a day: a target migrated from the fleet release (its
days have no record yet), and a variable re-described by the source (``GET /variables``).

The rules change is made the way a source makes it: the connector API serves its variables'
descriptions from ``connector_api.schema.KNOWN_VARIABLES``, so the served API is given a narrower
wind-speed range there (``monkeypatch.setitem``); the SQL reference reads the same table.
"""

import dataclasses
from datetime import timedelta

from connector_api.schema import KNOWN_VARIABLES
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)
from wind_pipeline_tests.test_migrations import fleet_release_day_target
from wind_pipeline_tests.test_sync_cli import records, wind_etl

DAYS = [DAY + timedelta(days=i) for i in range(3)]


def test_after_the_migration_from_the_fleet_release_sync_reloads_every_loaded_day_once(
    seed_source, serve_api, source_url, target_url, capsys
):
    """The fleet release's target (revision 0003, a day of two turbines, no record): the sync
    upgrades it, finds the day ``new`` for both turbines, reloads it to the reference, and the
    next sync does nothing."""
    fleet_release_day_target(target_url).dispose()
    seed_source(days=1, turbines=2)
    api = serve_api()
    code, lines = wind_etl(capsys, "sync", DAY.isoformat(), api=api, target=target_url)
    assert code == 0
    assert lines[0].startswith(f"{DAY.isoformat()}: WTG01, WTG02 new: reloaded")
    assert sorted(records(target_url)) == [(DAY, "WTG01"), (DAY, "WTG02")]
    start, end = day_bounds(DAY)
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )
    code, lines = wind_etl(capsys, "sync", DAY.isoformat(), api=api, target=target_url)
    assert code == 0 and len(lines) == 1 and lines[0].startswith("nothing to sync")


def test_a_re_described_variable_reloads_exactly_the_days_loaded_under_the_old_range(
    seed_source, serve_api, source_url, target_url, capsys, monkeypatch
):
    seed_source(days=3, turbines=2)
    api = serve_api()
    window = [DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]
    code, _ = wind_etl(
        capsys, *window[:1], "--end", DAYS[1].isoformat(), api=api, target=target_url
    )
    assert code == 0
    narrower = dataclasses.replace(KNOWN_VARIABLES["wind_speed"], physical_max=12.0)
    monkeypatch.setitem(KNOWN_VARIABLES, "wind_speed", narrower)
    code, _ = wind_etl(capsys, DAYS[2].isoformat(), api=api, target=target_url)  # new rules
    assert code == 0
    before = records(target_url)

    code, lines = wind_etl(capsys, "sync", *window, api=api, target=target_url)
    assert code == 0
    assert [line.split(": reloaded")[0] for line in lines[:2]] == [
        f"{day.isoformat()}: WTG01, WTG02 rules changed" for day in DAYS[:2]
    ]
    after = records(target_url)
    assert {key for key in after if after[key][2] != before[key][2]} == {
        (day, turbine) for day in DAYS[:2] for turbine in ("WTG01", "WTG02")
    }
    start, end = day_bounds(DAYS[0], 3)
    expected = reference_stats(source_url, start, end)  # reads the narrower range too
    assert any(row[1] == "wind_speed" and row[8] for row in expected)  # it rejects readings
    assert_stats_equal(target_stats(target_url, start, end), expected)
    code, lines = wind_etl(capsys, "sync", *window, api=api, target=target_url)
    assert len(lines) == 1 and lines[0].startswith("nothing to sync")
