"""How a backfill splits into runs: ``WIND_PIPELINE_BACKFILL_DAYS_PER_RUN`` days per run.

Unset, a backfill is one run (``BackfillPolicy.single_run()``): on one host that is the fastest
(one process, one Dagster start). Set to N, it becomes ``multi_run(N)``: a backfill of years
splits into runs of N days that a Docker or Kubernetes launcher runs side by side, each writing
its own days (the load's per-(day, turbine) locks keep them apart; README, "Beyond one machine").
"""

from __future__ import annotations

import os
import warnings

import dagster as dg

DAYS_PER_RUN_VARIABLE = "WIND_PIPELINE_BACKFILL_DAYS_PER_RUN"
# A run of more than ten years of days is a single run in all but name: likely a typo.
MAX_DAYS_PER_RUN = 3660

# BackfillPolicy is a deliberate choice; its beta notice would otherwise be printed at each load.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def days_per_run_from_env() -> int | None:
    """N from the environment, None when unset or empty; a bad value fails the definitions' load
    with a line saying what is expected."""
    raw = os.environ.get(DAYS_PER_RUN_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS_PER_RUN:
        raise ValueError(
            f"{DAYS_PER_RUN_VARIABLE}={raw!r} is not a number of days from 1 to "
            f"{MAX_DAYS_PER_RUN}; unset it for one run per backfill"
        )
    return days


def backfill_policy() -> dg.BackfillPolicy:
    """``multi_run(N)`` with N from ``WIND_PIPELINE_BACKFILL_DAYS_PER_RUN``, else ``single_run()``.

    Every asset of the graph must get the same policy: Dagster groups a backfill's assets by
    policy, and different ones would split one day's steps into separate runs.
    """
    days = days_per_run_from_env()
    return dg.BackfillPolicy.single_run() if days is None else dg.BackfillPolicy.multi_run(days)
