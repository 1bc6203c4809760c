"""A year (365 daily partitions) in one run with `--partition-range`, end to end.

Floor: the same three assets doing no work (a no-op, range-aware IO manager), same CLI, same
PostgreSQL storage, one run of the same range, timed in the same process. What the floor costs
is Dagster recording three materializations per day (1,095 for a year). Target: <= 1.3x.

    .venv/bin/python benchmarks/bench_dagster_backfill.py [--runs 3] [--days 365]
"""

import argparse
from datetime import date, timedelta

from dagster_bench_support import materialize_seconds, medians, stack

FIRST_DAY = date(2024, 1, 1)
TARGET_RATIO = 1.3

NO_WORK = """
import dagster as dg

days = dg.DailyPartitionsDefinition(start_date="{first_day}", timezone="UTC")
one_run = dg.BackfillPolicy.single_run()


class NoOpIOManager(dg.ConfigurableIOManager):
    def handle_output(self, context, obj):
        context.asset_partition_keys  # accepts a range, as ours does

    def load_input(self, context):
        return None


@dg.asset(partitions_def=days, backfill_policy=one_run, group_name="wind")
def raw_readings():
    return None


@dg.asset(partitions_def=days, backfill_policy=one_run, group_name="wind")
def ten_minute_stats(raw_readings):
    return None


@dg.asset(partitions_def=days, backfill_policy=one_run, group_name="wind")
def signal_data(ten_minute_stats):
    return None


defs = dg.Definitions(
    assets=[raw_readings, ten_minute_stats, signal_data],
    resources={{"io_manager": NoOpIOManager()}},
    executor=dg.in_process_executor,
)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant (default 3)")
    parser.add_argument("--days", type=int, default=365, help="partitions in the range (365)")
    args = parser.parse_args()
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    partition_range = ["--partition-range", f"{FIRST_DAY.isoformat()}...{last_day.isoformat()}"]
    with stack(FIRST_DAY, days=args.days) as s:
        floor_module = s.write_module("no_work", NO_WORK.format(first_day=FIRST_DAY.isoformat()))
        materialize_seconds(s, floor_module, "--partition", FIRST_DAY.isoformat())  # migrations
        modules = [floor_module, "wind_pipeline.definitions"]
        times = medians(s, modules, partition_range, args.runs, warm_up=False)
    floor, ours = times[floor_module], times["wind_pipeline.definitions"]
    print(f"\n{args.days} partitions in one run, median of {args.runs}:")
    print(f"  floor: 3 assets doing no work      {floor:7.2f} s")
    print(f"  wind_pipeline.definitions          {ours:7.2f} s  {ours / floor:4.2f}x the floor")
    per_day = {
        name: 1000 * seconds / args.days for name, seconds in (("floor", floor), ("ours", ours))
    }
    print(f"  per partition: floor {per_day['floor']:.1f} ms, ours {per_day['ours']:.1f} ms")
    verdict = "meets" if ours / floor <= TARGET_RATIO else "MISSES"
    print(f"ratio {ours / floor:.2f} {verdict} the target <= {TARGET_RATIO}x")


if __name__ == "__main__":
    main()
