"""``WIND_PIPELINE_BACKFILL_DAYS_PER_RUN``: how many runs a backfill becomes, and that they add up.

The run requests come from ``build_run_requests_with_backfill_policies``, the function Dagster's
backfill daemon calls on a backfill's first iteration (``asset_backfill.py``), on the real asset
graph and a real instance; each request is then materialized in-process with the partition range
tags the daemon would give its run. The daemon itself (a code server, a launcher, polling) is
left out: it adds minutes and nothing that depends on this code location.
"""

import dagster as dg
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey

from wind_pipeline.defs.assets import raw_readings, signal_data, ten_minute_stats
from wind_pipeline.defs.backfill import DAYS_PER_RUN_VARIABLE, backfill_policy
from wind_pipeline.defs.partitions import daily_partitions
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.dagster_support import RANGE_END_TAG, RANGE_START_TAG, resources
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

ASSETS = (raw_readings, ten_minute_stats, signal_data)
DAYS = [f"2024-01-0{n}" for n in range(1, 7)]


def test_unset_is_one_run_and_a_number_is_runs_of_that_many_days(monkeypatch):
    monkeypatch.delenv(DAYS_PER_RUN_VARIABLE, raising=False)
    assert backfill_policy() == dg.BackfillPolicy.single_run()
    monkeypatch.setenv(DAYS_PER_RUN_VARIABLE, "")
    assert backfill_policy() == dg.BackfillPolicy.single_run()
    monkeypatch.setenv(DAYS_PER_RUN_VARIABLE, " 7 ")
    assert backfill_policy() == dg.BackfillPolicy.multi_run(7)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "9999"])
def test_a_bad_value_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv(DAYS_PER_RUN_VARIABLE, value)
    with pytest.raises(ValueError, match=f"{DAYS_PER_RUN_VARIABLE}='{value}' is not a number"):
        backfill_policy()


def test_a_six_day_backfill_of_two_days_per_run_is_three_runs_that_land_it_all(
    monkeypatch, seed_source, serve_api, source_url, target_url, tmp_path
):
    monkeypatch.setenv(DAYS_PER_RUN_VARIABLE, "2")
    seed_source(days=6, turbines=2, faults=True)
    policy = backfill_policy()
    assets = [a.with_attributes(backfill_policy=policy) for a in ASSETS]
    bound = resources(serve_api(), target_url, tmp_path / "storage")
    graph = dg.Definitions(assets=assets, resources=bound).resolve_asset_graph()
    instance = dg.DagsterInstance.ephemeral()
    wanted = {
        AssetKeyPartitionKey(key, day)
        for key in graph.materializable_asset_keys
        for day in DAYS
        if graph.get(key).partitions_def == daily_partitions
    }

    requests = build_run_requests_with_backfill_policies(wanted, graph, instance)

    ranges = sorted((r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests)
    assert ranges == [
        ("2024-01-01", "2024-01-02"),
        ("2024-01-03", "2024-01-04"),
        ("2024-01-05", "2024-01-06"),
    ]
    assert all(set(r.asset_selection) == graph.materializable_asset_keys for r in requests)

    for request in requests:
        result = dg.materialize(assets, resources=bound, instance=instance, tags=request.tags)
        assert result.success
    assert len(instance.get_runs()) == 3
    materialized = instance.get_materialized_partitions(signal_data.key)
    assert materialized == set(DAYS)
    start, end = day_bounds(DAY, 6)
    expected = reference_stats(source_url, start, end, variables=("wind_speed", "power"))
    assert_stats_equal(target_stats(target_url, start, end), expected)
