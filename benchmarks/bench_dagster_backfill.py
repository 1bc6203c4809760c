"""A year (365 daily partitions) in one run with `--partition-range`, end to end.

Floor: the same asset graph doing no work, same CLI, same PostgreSQL storage, one run of the same
range, timed in the same process: three assets streaming a lazy value per day into a no-op IO
manager, the same seven per-partition checks each recording one result per day. What the floor
costs is Dagster recording, per day, three materializations and seven check evaluations (3,650
events for a year). Target: ours <= 1.2x the floor. A second floor without the checks shows what
one result per day and check costs in Dagster itself.

    .venv/bin/python benchmarks/bench_dagster_backfill.py [--runs 3] [--days 365] [--turbines 1]
"""

import argparse
from datetime import date, timedelta

from dagster_bench_support import materialize_seconds, medians, stack

FIRST_DAY = date(2024, 1, 1)
TARGET_RATIO = 1.2

NO_WORK = """
import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
days = dg.DailyPartitionsDefinition(start_date="{first_day}", timezone="UTC")
one_run = dg.BackfillPolicy.single_run()
CHECKS = {checks}


def specs(asset):
    return [
        dg.AssetCheckSpec(name, asset=asset, partitions_def=days, blocking=blocking)
        for name, blocking in CHECKS.get(asset, [])
    ]


class NoOpIOManager(dg.ConfigurableIOManager):
    def handle_output(self, context, obj):
        for _ in obj or ():  # consumes a lazy value day by day, as ours does
            pass

    def load_input(self, context):
        return list(context.asset_partition_keys)


def streamed(context, asset):
    yield dg.Output(((key, None) for key in context.partition_keys))
    names = {{s.key: n for n, s in context.assets_def.check_specs_by_output_name.items()}}
    for key in context.selected_asset_check_keys:
        yield dg.Output(None, output_name=names[key])
    for key in context.partition_keys:
        for name, blocking in CHECKS.get(asset, []):
            yield dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(asset), check_name=name, passed=True, partition=key,
                blocking=blocking,
            )


@dg.asset(partitions_def=days, backfill_policy=one_run, check_specs=specs("raw_readings"))
def raw_readings(context):
    yield from streamed(context, "raw_readings")


@dg.asset(partitions_def=days, backfill_policy=one_run, check_specs=specs("ten_minute_stats"))
def ten_minute_stats(context, raw_readings):
    yield from streamed(context, "ten_minute_stats")


@dg.asset(partitions_def=days, backfill_policy=one_run, check_specs=specs("signal_data"))
def signal_data(context, ten_minute_stats):
    yield from streamed(context, "signal_data")


defs = dg.Definitions(
    assets=[raw_readings, ten_minute_stats, signal_data],
    resources={{"io_manager": NoOpIOManager()}},
    executor=dg.in_process_executor,
)
"""
OUR_CHECKS = {
    "raw_readings": [
        ("readings_complete", False),
        ("readings_in_physical_range", False),
        ("readings_not_frozen", False),
    ],
    "ten_minute_stats": [
        ("windows_complete", True),
        ("statistics_consistent", True),
        ("rejected_share", False),
    ],
    "signal_data": [("target_matches_stats", True)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant (default 3)")
    parser.add_argument("--days", type=int, default=365, help="partitions in the range (365)")
    parser.add_argument("--turbines", type=int, default=1, help="turbines seeded (default 1)")
    args = parser.parse_args()
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    partition_range = ["--partition-range", f"{FIRST_DAY.isoformat()}...{last_day.isoformat()}"]
    with stack(FIRST_DAY, days=args.days, turbines=args.turbines) as s:
        first = FIRST_DAY.isoformat()
        floor = s.write_module("no_work", NO_WORK.format(first_day=first, checks=OUR_CHECKS))
        bare = s.write_module("no_work_no_checks", NO_WORK.format(first_day=first, checks={}))
        materialize_seconds(s, floor, "--partition", first)  # Dagster's storage migrations
        modules = [floor, bare, "wind_pipeline.definitions"]
        times = medians(s, modules, partition_range, args.runs, warm_up=False)
    ours = times["wind_pipeline.definitions"]
    print(f"\n{args.days} partitions x {args.turbines} turbines in one run, median of {args.runs}:")
    print(f"  floor: same graph (3 assets, 7 checks per day), no work  {times[floor]:7.2f} s")
    print(f"  the same without checks                                   {times[bare]:7.2f} s")
    print(
        f"  wind_pipeline.definitions                                 {ours:7.2f} s  "
        f"{ours / times[floor]:4.2f}x the floor"
    )
    labels = {"floor": floor, "no checks": bare, "ours": "wind_pipeline.definitions"}
    per_day = {name: 1000 * times[module] / args.days for name, module in labels.items()}
    print("  per partition: " + ", ".join(f"{k} {v:.1f} ms" for k, v in per_day.items()))
    verdict = "meets" if ours / times[floor] <= TARGET_RATIO else "MISSES"
    print(f"ratio {ours / times[floor]:.2f} {verdict} the target <= {TARGET_RATIO}x")


if __name__ == "__main__":
    main()
