"""A year (365 daily partitions) in one run with `--partition-range`, end to end.

Floor: the same asset graph doing no work, same CLI, same PostgreSQL storage, one run of the same
range, timed in the same process: three assets streaming a lazy value per day into a no-op IO
manager, the same ten per-partition checks each recording one result per day. What the floor
costs is Dagster recording, per day, three materializations and ten check evaluations (4,745
events for a year). Target: ours <= 1.2x the floor. A second floor without the checks shows what
one result per day and check costs in Dagster itself.

    .venv/bin/python benchmarks/bench_dagster_backfill.py [--runs 3] [--days 365] [--turbines 1]

``--compare-pool``: instead, the floor and ours on the repo's instance (pooled connections,
wind_pipeline/instance.py) against plain dagster-postgres (a connection per storage call), same
database, same run; ``--days 1`` then times one ``--partition``.
"""

import argparse
from datetime import date, timedelta

from dagster_bench_support import (
    OUR_CHECKS,
    materialize_seconds,
    medians,
    no_work_graph,
    pool_comparison,
    stack,
)

FIRST_DAY = date(2024, 1, 1)
TARGET_RATIO = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant (default 3)")
    parser.add_argument("--days", type=int, default=365, help="partitions in the range (365)")
    parser.add_argument("--turbines", type=int, default=1, help="turbines seeded (default 1)")
    parser.add_argument("--compare-pool", action="store_true", help="pooled vs plain storage")
    args = parser.parse_args()
    if args.compare_pool:
        compare_pool(args)
        return
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    partition_range = ["--partition-range", f"{FIRST_DAY.isoformat()}...{last_day.isoformat()}"]
    with stack(FIRST_DAY, days=args.days, turbines=args.turbines) as s:
        first = FIRST_DAY.isoformat()
        floor = s.write_module("no_work", no_work_graph(first, OUR_CHECKS))
        bare = s.write_module("no_work_no_checks", no_work_graph(first, {}))
        materialize_seconds(s, floor, "--partition", first)  # Dagster's storage migrations
        modules = [floor, bare, "wind_pipeline.definitions"]
        times = medians(s, modules, partition_range, args.runs, warm_up=False)
    ours = times["wind_pipeline.definitions"]
    print(f"\n{args.days} partitions x {args.turbines} turbines in one run, median of {args.runs}:")
    print(f"  floor: same graph (3 assets, 10 checks per day), no work {times[floor]:7.2f} s")
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


def compare_pool(args: argparse.Namespace) -> None:
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    first = FIRST_DAY.isoformat()
    selection = (
        ["--partition", first]
        if args.days == 1
        else ["--partition-range", f"{first}...{last_day.isoformat()}"]
    )
    with stack(FIRST_DAY, days=args.days, turbines=args.turbines) as s:
        floor = s.write_module("no_work", no_work_graph(first, OUR_CHECKS))
        materialize_seconds(s, floor, "--partition", first)  # Dagster's storage migrations
        times = pool_comparison(s, [floor, "wind_pipeline.definitions"], selection, args.runs)
    print(f"\n{args.days} partitions x {args.turbines} turbines, median of {args.runs}:")
    for module in (floor, "wind_pipeline.definitions"):
        plain, pooled = times[("plain", module)], times[("pooled", module)]
        print(
            f"  {module:26s} plain {plain:7.2f} s  pooled {pooled:7.2f} s  "
            f"{pooled / plain:4.2f}x  ({1000 * (plain - pooled) / args.days:.0f} ms/day saved)"
        )


if __name__ == "__main__":
    main()
