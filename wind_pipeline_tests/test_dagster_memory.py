"""A range run's memory is bounded by one block of days, not by the range.

The run process (``dagster asset materialize``, in-process executor) is measured with psutil.
The bound is the peak of a two-day run of the same fleet, plus a quarter of what the long range
weighs whole (its raw readings and statistics as Arrow, measured from the stored files): holding
the range whole would cost four times that allowance. The test scales the bound down, not the
data up: blocks of one day (``block_readings``) keep the honest working set small.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from wind_pipeline_tests.dagster_support import (
    dagster_home,
    materialize_measuring_memory,
    run_config_args,
)

TURBINES, DAYS = 25, 30
VARIABLES = ["wind_speed", "power", "ambient_temperature"]
MB = 1 << 20


def whole_bytes(storage: Path) -> int:
    """What holding every stored day at once would take: the Arrow size of all files."""
    return sum(
        pq.read_table(path).nbytes
        for asset in ("raw_readings", "ten_minute_stats")
        for path in (storage / asset).glob("*.parquet")
    )


@pytest.mark.slow
def test_a_long_range_run_stays_within_a_quarter_of_its_data_above_a_short_one(
    seed_source, serve_api, make_database, target_url, tmp_path
) -> None:
    seed_source(days=DAYS, turbines=TURBINES)
    storage = tmp_path / "storage"
    env = {
        **dagster_home(tmp_path, make_database()),
        "CONNECTOR_API_URL": serve_api(),
        "TARGET_DATABASE_URL": target_url,
        "WIND_PIPELINE_START_DATE": "2024-01-01",
        "WIND_PIPELINE_STORAGE_DIR": str(storage),
    }

    def run(days: int) -> int:
        raw = {"variables": VARIABLES, "block_readings": 1440 * TURBINES}
        config = run_config_args({"ops": {"raw_readings": {"config": raw}}})
        span = ["--partition-range", f"2024-01-01...2024-01-{days:02d}"]
        measured = materialize_measuring_memory(env, *span, *config)
        assert measured.returncode == 0, measured.stderr[-3000:]
        return measured.peak_rss

    # The higher of two short runs: identical runs' peaks differ by up to ~8 MB (when the
    # allocators hand pages back), and one low baseline would fail a long run on noise alone.
    short = max(run(2), run(2))
    long = run(DAYS)
    allowance = whole_bytes(storage) // 4

    print(f"peak RSS: 2 days {short / MB:.1f} MB, {DAYS} days {long / MB:.1f} MB; ")
    print(f"{DAYS} days x {TURBINES} turbines whole: {4 * allowance / MB:.1f} MB")
    assert allowance > 5 * MB  # the range is heavy enough to show, well above RSS noise
    assert long <= short + allowance, (long - short) / MB
