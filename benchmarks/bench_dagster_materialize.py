"""`dagster asset materialize` of one partition (3 assets, 10 checks), against no-work floors.

Floor (docs/rules.md): the same asset graph doing no work (3 assets streaming a lazy value into a
no-op IO manager, the same 10 per-partition checks), in-process executor, same CLI, same
PostgreSQL storage, timed in the same run. Target: ours <= 1.15x that floor. Also shown: a
one-asset project (what Dagster costs before any graph), and the default multiprocess executor
(why definitions.py sets the in-process one).

    .venv/bin/python benchmarks/bench_dagster_materialize.py [--runs 5] [--turbines 1]
"""

import argparse
from datetime import date

from dagster_bench_support import OUR_CHECKS, medians, no_work_graph, stack

DAY = date(2024, 1, 1)
TARGET_RATIO = 1.15

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
    parser.add_argument("--turbines", type=int, default=1, help="turbines seeded (default 1)")
    args = parser.parse_args()
    with stack(DAY, days=1, turbines=args.turbines) as s:
        modules = {
            "floor (1 trivial asset, in-process)": s.write_module(
                "trivial_inprocess", TRIVIAL.format(executor="in_process_executor")
            ),
            "same 3 assets + 10 checks, no work": s.write_module(
                "shape_no_work", no_work_graph(DAY.isoformat(), OUR_CHECKS)
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
    shape = times["shape_no_work"]
    print(f"our code's own cost: {ours - shape:.2f} s")
    verdict = "meets" if ours / shape <= TARGET_RATIO else "MISSES"
    print(f"ratio to the same graph doing no work {ours / shape:.2f} {verdict} <= {TARGET_RATIO}x")


if __name__ == "__main__":
    main()
