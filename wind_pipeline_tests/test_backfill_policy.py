"""``WIND_PIPELINE_BACKFILL_DAYS_PER_RUN``: how many runs a backfill becomes, and that they add up.

The assets read the policy when the code location loads (``BACKFILL_POLICY`` in
``defs/assets.py``), so the tests load it again with the variable set: in a fresh process for the
definitions as ``dagster`` loads them, and by reloading the assets' module for the backfill run.
The run requests come from ``build_run_requests_with_backfill_policies``, the function Dagster's
backfill daemon calls on a backfill's first iteration (``asset_backfill.py``), on the real asset
graph and a real instance; each request is then materialized in-process with the partition range
tags the daemon would give its run. The daemon itself (a code server, a launcher, polling) is
left out: it adds minutes and nothing that depends on this code location.
"""

import importlib
import json
import os
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey

from wind_pipeline.defs import assets as assets_module
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


POLICIES_OF_THE_CODE_LOCATION = """
import json
from wind_pipeline.definitions import defs
graph = defs.resolve_asset_graph()
print(json.dumps({key.to_user_string(): [p.policy_type.value, p.max_partitions_per_run]
                  for key in graph.materializable_asset_keys
                  if (p := graph.get(key).backfill_policy) is not None}))
"""


def load_definitions(days_per_run: str | None) -> subprocess.CompletedProcess:
    """Load ``wind_pipeline.definitions`` in a fresh process, as ``dagster`` does."""
    env = {k: v for k, v in os.environ.items() if k != DAYS_PER_RUN_VARIABLE}
    env |= {"TARGET_DATABASE_URL": "postgresql://localhost/unused"}
    if days_per_run is not None:
        env[DAYS_PER_RUN_VARIABLE] = days_per_run
    code = POLICIES_OF_THE_CODE_LOCATION
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_code_location_gives_all_three_assets_the_policy_of_the_environment():
    unset, two = load_definitions(None), load_definitions("2")
    assert unset.returncode == 0, unset.stderr
    assert two.returncode == 0, two.stderr
    names = ["raw_readings", "signal_data", "ten_minute_stats"]
    assert json.loads(unset.stdout.splitlines()[-1]) == {n: ["SINGLE_RUN", None] for n in names}
    assert json.loads(two.stdout.splitlines()[-1]) == {n: ["MULTI_RUN", 2] for n in names}
    bad = load_definitions("two")
    assert bad.returncode != 0
    assert f"{DAYS_PER_RUN_VARIABLE}='two' is not a number of days" in bad.stderr


@pytest.fixture
def assets_of(monkeypatch):
    """The real assets, loaded again with ``WIND_PIPELINE_BACKFILL_DAYS_PER_RUN`` set; the
    module is loaded once more without it afterwards, for the tests that follow."""

    def load(days_per_run: str) -> list[dg.AssetsDefinition]:
        monkeypatch.setenv(DAYS_PER_RUN_VARIABLE, days_per_run)
        module = importlib.reload(assets_module)
        return [module.raw_readings, module.ten_minute_stats, module.signal_data]

    yield load
    monkeypatch.delenv(DAYS_PER_RUN_VARIABLE, raising=False)
    importlib.reload(assets_module)


def test_a_six_day_backfill_of_two_days_per_run_is_three_runs_that_land_it_all(
    assets_of, seed_source, serve_api, source_url, target_url, tmp_path
):
    assets = assets_of("2")
    assert {a.backfill_policy for a in assets} == {dg.BackfillPolicy.multi_run(2)}
    seed_source(days=6, turbines=2, faults=True)
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
    materialized = instance.get_materialized_partitions(assets[-1].key)
    assert materialized == set(DAYS)
    start, end = day_bounds(DAY, 6)
    expected = reference_stats(source_url, start, end, variables=("wind_speed", "power"))
    assert_stats_equal(target_stats(target_url, start, end), expected)
