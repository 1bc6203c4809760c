"""`dagster asset materialize` of one partition (3 assets), against a one-asset project.

Floor: a one-asset daily-partitioned project doing nothing, in-process executor, same CLI, same
PostgreSQL storage, timed in the same run. Target: ours <= 1.3x the floor. Also shows what the
default multiprocess executor costs, which is why definitions.py sets the in-process one.

    .venv/bin/python benchmarks/bench_dagster_materialize.py [--runs 5]
"""

import argparse
from datetime import date

from dagster_bench_support import medians, stack

DAY = date(2024, 1, 1)
TARGET_RATIO = 1.3

TRIVIAL = """
import dagster as dg

@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC"))
def trivial() -> None:
    return None

defs = dg.Definitions(assets=[trivial], executor=dg.{executor})
"""
# Our asset graph's shape with no work (and no import of our code): three assets, six in-body
# checks of the same names and severities, a no-op IO manager.
# Ours minus this is what our own code costs; this minus TRIVIAL is Dagster's per-step,
# per-event bookkeeping for that shape.
SHAPE = """
import dagster as dg

RAW_READINGS_CHECKS = [
    dg.AssetCheckSpec(name, asset="raw_readings")
    for name in ("readings_complete", "readings_in_physical_range", "readings_not_frozen")
]
TEN_MINUTE_STATS_CHECKS = [
    dg.AssetCheckSpec(name, asset="ten_minute_stats", blocking=True)
    for name in ("windows_complete", "statistics_consistent")
]
SIGNAL_DATA_CHECKS = [dg.AssetCheckSpec("target_matches_stats", asset="signal_data", blocking=True)]
days = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")


class NoOpIOManager(dg.ConfigurableIOManager):
    def handle_output(self, context, obj):
        pass

    def load_input(self, context):
        return None


def passed(specs):
    return [dg.AssetCheckResult(check_name=spec.name, passed=True) for spec in specs]


@dg.asset(partitions_def=days, check_specs=RAW_READINGS_CHECKS)
def raw_readings():
    return dg.MaterializeResult(value=None, check_results=passed(RAW_READINGS_CHECKS))


@dg.asset(partitions_def=days, check_specs=TEN_MINUTE_STATS_CHECKS)
def ten_minute_stats(raw_readings):
    return dg.MaterializeResult(value=None, check_results=passed(TEN_MINUTE_STATS_CHECKS))


@dg.asset(partitions_def=days, check_specs=SIGNAL_DATA_CHECKS)
def signal_data(ten_minute_stats):
    return dg.MaterializeResult(check_results=passed(SIGNAL_DATA_CHECKS))


defs = dg.Definitions(
    assets=[raw_readings, ten_minute_stats, signal_data],
    resources={"io_manager": NoOpIOManager()},
    executor=dg.in_process_executor,
)
"""
OURS = """
import dagster as dg
import wind_pipeline.definitions as location

defs = dg.Definitions(
    assets=location.defs.assets, resources=location.defs.resources, executor=dg.{executor}
)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per variant (default 5)")
    args = parser.parse_args()
    with stack(DAY, days=1) as s:
        modules = {
            "floor (1 trivial asset, in-process)": s.write_module(
                "trivial_inprocess", TRIVIAL.format(executor="in_process_executor")
            ),
            "same 3 assets + 6 checks, no work": s.write_module("shape_no_work", SHAPE),
            "wind_pipeline.definitions (in-process)": "wind_pipeline.definitions",
            "floor (1 trivial asset, multiprocess)": s.write_module(
                "trivial_multiprocess", TRIVIAL.format(executor="multiprocess_executor")
            ),
            "wind pipeline, multiprocess executor": s.write_module(
                "wind_multiprocess", OURS.format(executor="multiprocess_executor")
            ),
        }
        times = medians(s, list(modules.values()), ["--partition", DAY.isoformat()], args.runs)
    floor = times[modules["floor (1 trivial asset, in-process)"]]
    print(f"\ndagster asset materialize, one partition, median of {args.runs}:")
    for label, module in modules.items():
        print(f"  {label:42s} {times[module]:6.2f} s  {times[module] / floor:4.2f}x the floor")
    ours = times["wind_pipeline.definitions"]
    shape = times["shape_no_work"]
    print(f"our code's own cost: {ours - shape:.2f} s ({ours / shape:.2f}x the no-work shape)")
    verdict = "meets" if ours / floor <= TARGET_RATIO else "MISSES"
    print(f"ratio {ours / floor:.2f} {verdict} the target <= {TARGET_RATIO}x")


if __name__ == "__main__":
    main()
