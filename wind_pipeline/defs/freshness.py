"""How fresh ``signal_data`` must be: late when its newest loaded day is more than 2 days old.

Dagster's freshness policy (1.12+, evaluated by the daemon's freshness loop and shown on the
asset's page and in the asset health) measures the time since the asset's last materialization.
The daily schedule loads yesterday at 00:15, so the last materialization and the newest loaded
day age together: past 26 hours one daily run was missed (WARN), past 48 hours the newest day in
the target is more than 2 days old (FAIL). A backfill of old days counts as a materialization
too; the sensor and the schedule keep the newest day moving, which is what the policy watches.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TypeVar

import dagster as dg

from wind_pipeline.defs.keys import SIGNAL_DATA

SIGNAL_DATA_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=2), warn_window=timedelta(hours=26)
)
T = TypeVar("T")


def _attach(spec: dg.AssetSpec) -> dg.AssetSpec:
    if spec.key != SIGNAL_DATA:
        return spec
    return dg.apply_freshness_policy(spec, SIGNAL_DATA_FRESHNESS)


def with_freshness(assets: Iterable[T]) -> list[T]:
    """``assets`` with the freshness policy on ``signal_data`` (the others unchanged)."""
    return dg.map_asset_specs(_attach, assets)
