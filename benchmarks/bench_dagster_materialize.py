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
    verdict = "meets" if ours / floor <= TARGET_RATIO else "MISSES"
    print(f"ratio {ours / floor:.2f} {verdict} the target <= {TARGET_RATIO}x")


if __name__ == "__main__":
    main()
