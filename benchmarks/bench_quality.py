"""QC's cost and accuracy: the transform with QC on against QC off, and recall/precision on a year.

Cost: ``transform`` of one day and of one year of a turbine, and of one day of a 50-turbine
fleet (wind_speed, power), QC on against QC off in the same run, timed turn by turn (the floor:
the plain statistics of the same rows); the budget is ≤ 1.5x. ``classify`` alone is timed too,
per variable. Accuracy: a year seeded with ``--faults`` (the generator's own rows, as
``connector-api seed --faults`` writes them, kept in memory) against its ground truth
(``fault_log``): recall over the injected out-of-range, frozen and spike readings, precision over
everything QC rejects, per variable.
Directions: ``transform`` of a day and of a 50-turbine day with the five variables against the
same with the three linear ones (same run, turn by turn): a circular variable's cost is half the
difference, a linear one's a third of the three, and the budget is ≤ 1.5x; with ``yaw_error``
too. The direction columns are the generator's when it writes them, else a random-walk vane and
a nacelle following it with a dead band, drawn here.
Run: ``.venv/bin/python benchmarks/bench_quality.py [--turbines N] [--directions-only]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from bench_etl import median_seconds

START = datetime(2024, 1, 1, tzinfo=UTC)
VARIABLES = ("wind_speed", "power")
ALL_VARIABLES = ("wind_speed", "power", "ambient_temperature")
DAY_RUNS, YEAR_RUNS = 30, 9
REJECTING = {"out_of_range": "out_of_range", "frozen": "frozen", "spike": "spike"}


def interleaved(
    runs: dict[str, Callable[[], object]],
    repeat: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Medians of several runs timed turn by turn, so a busy neighbour slows them alike."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            began = clock()
            run()
            times[name].append(clock() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def limits():
    """The pipeline's rules as ``GET /variables`` serves them (``frozen_minutes``,
    ``frozen_exempt`` and ``kind`` included: without them power's idle 0 kW runs are frozen)."""
    from wind_pipeline_tests.reference import pipeline_limits

    return pipeline_limits()


def generated(days: int, turbines: int, faults: bool) -> tuple[pa.Table, pa.Table | None]:
    from connector_api.generator import generate_blocks

    end = START + timedelta(days=days)
    rows, logs = [], []
    for block, log in generate_blocks(START, end, turbines=turbines, faults=faults):
        rows.append(block)
        if log is not None:
            logs.append(log)
    raw = pa.concat_tables(rows).unify_dictionaries().combine_chunks()
    return raw, pa.concat_tables(logs) if logs else None


def cost(days: int, turbines: int, repeat: int) -> None:
    from wind_pipeline.etl import quality
    from wind_pipeline.etl.transform import transform

    raw, _ = generated(days, turbines, faults=True)
    end = START + timedelta(days=days)
    names = [f"WTG{n:02d}" for n in range(1, turbines + 1)]
    described = {name: limits()[name] for name in VARIABLES}

    def run(qc: bool) -> Callable[[], object]:
        return lambda: transform(raw, START, end, turbines=names, variables=described, qc=qc)

    medians = interleaved({"on": run(True), "off": run(False)}, repeat)
    label = f"{days} day{'s' if days > 1 else ''} x {turbines} turbine{'s' if turbines > 1 else ''}"
    print(
        f"transform {label} ({raw.num_rows:,} rows), median of {repeat}: "
        f"QC on {medians['on'] * 1e3:.1f} ms, QC off {medians['off'] * 1e3:.1f} ms, "
        f"ratio {medians['on'] / medians['off']:.2f}x (<= 1.5x)"
    )
    codes = raw.column("turbine_id").combine_chunks().indices.to_numpy().astype(np.int64)
    stamps = raw.column("timestamp").cast(pa.int64()).to_numpy()
    segments = quality.day_segments(codes, stamps)
    for name in VARIABLES:
        values = raw.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        seconds = median_seconds(
            lambda values=values, name=name: quality.classify(
                segments, stamps, values, described[name]
            ),
            repeat,
        )
        rate = raw.num_rows / seconds / 1e6
        print(f"  classify {name}: {seconds * 1e3:.2f} ms ({rate:.0f} M readings/s)")


def accuracy(days: int, turbines: int) -> None:
    from wind_pipeline.etl import quality

    raw, log = generated(days, turbines, faults=True)
    names = [f"WTG{n:02d}" for n in range(1, turbines + 1)]
    start_us = int(START.timestamp()) * 1_000_000
    span = days * 86_400_000_000

    def keys(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        ids = table.column("turbine_id").cast(pa.string()).to_numpy(zero_copy_only=False)
        codes = np.searchsorted(np.array(names), ids).astype(np.int64)
        stamps = table.column("timestamp").cast(pa.int64()).to_numpy()
        return codes, codes * span + (stamps - start_us)

    codes, row_keys = keys(raw)
    stamps = raw.column("timestamp").cast(pa.int64()).to_numpy()
    segments = quality.day_segments(codes, stamps)  # blocks of days: each segment contiguous
    order = np.argsort(row_keys, kind="stable")
    _, log_keys = keys(log)
    log_rows = order[np.minimum(np.searchsorted(row_keys[order], log_keys), len(order) - 1)]
    log_variables = log.column("variable").to_numpy(zero_copy_only=False)
    log_faults = log.column("fault").to_numpy(zero_copy_only=False)
    present = log_faults != "gap"  # a gap's row is absent; every other logged reading is a row
    assert np.array_equal(row_keys[log_rows[present]], log_keys[present])
    described = limits()
    print(f"QC accuracy, {days} days x {turbines} turbine(s) seeded with faults:")
    total_hit = total_injected = total_rejected = 0
    for name in ALL_VARIABLES:
        values = raw.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        status = quality.classify(segments, stamps, values, described[name])
        expected = np.full(len(status), quality.VALID, dtype=np.int8)
        injected = np.zeros(len(status), dtype=bool)
        for fault, reason in REJECTING.items():
            rows = log_rows[(log_variables == name) & (log_faults == fault)]
            injected[rows] = True
            expected[rows] = quality.REASONS.index(reason)
        rejected = quality.is_rejected(status)
        hit = rejected & injected
        same_reason = int(np.count_nonzero(hit & (status == expected)))
        recall = hit.sum() / max(injected.sum(), 1)
        precision = hit.sum() / max(rejected.sum(), 1)
        print(
            f"  {name}: injected {int(injected.sum()):,}, rejected {int(rejected.sum()):,}, "
            f"recall {recall:.2%}, precision {precision:.2%}, "
            f"same reason {same_reason:,}/{int(hit.sum()):,}"
        )
        total_hit += int(hit.sum())
        total_injected += int(injected.sum())
        total_rejected += int(rejected.sum())
    print(
        f"  all variables: recall {total_hit / max(total_injected, 1):.2%}, "
        f"precision {total_hit / max(total_rejected, 1):.2%}"
    )


DIRECTIONS = ("wind_direction", "nacelle_position")


def catalogue():
    """The catalogue with the directions' rules (kinds, frozen rules, power's range) as
    GET /variables serves them, written out so the benchmark needs no running API."""
    from wind_pipeline.etl.catalogue import Variable, with_derived

    linear = limits()
    rules = {
        "wind_speed": {"frozen_exempt": (0.0,)},
        "power": {"physical_min": -150.0, "physical_max": 3450.0, "frozen_exempt": (0.0, 3000.0)},
        "ambient_temperature": {"frozen_exempt": ()},
    }
    described = {
        name: Variable(
            name,
            physical_min=rules[name].get("physical_min", linear[name].physical_min),
            physical_max=rules[name].get("physical_max", linear[name].physical_max),
            max_step=linear[name].max_step,
            frozen_exempt=rules[name]["frozen_exempt"],
        )
        for name in ALL_VARIABLES
    }
    described["wind_direction"] = Variable(
        "wind_direction", "°", None, 0.0, 360.0, 90.0, kind="circular", frozen_exempt=()
    )
    described["nacelle_position"] = Variable(
        "nacelle_position", "°", None, 0.0, 360.0, 30.0, kind="circular", frozen_minutes=None,
        frozen_exempt=(),
    )  # fmt: skip
    return with_derived(described)


def directions_cost(turbines: int, repeat: int) -> None:
    from wind_pipeline.etl.transform import transform

    raw, _ = generated(1, turbines, faults=True)
    end = START + timedelta(days=1)
    names = [f"WTG{n:02d}" for n in range(1, turbines + 1)]
    described = catalogue()

    def run(variables: tuple[str, ...]) -> Callable[[], object]:
        chosen = {name: described[name] for name in variables}
        return lambda: transform(raw, START, end, turbines=names, variables=chosen)

    # CPU time: on a loaded machine a run longer than a scheduler slice waits for the CPU more
    # often than a short one, which wall time would charge to the longer (five-variable) run.
    medians = interleaved(
        {
            "linear": run(ALL_VARIABLES),
            "five": run(ALL_VARIABLES + DIRECTIONS),
            "six": run((*ALL_VARIABLES, *DIRECTIONS, "yaw_error")),
        },
        repeat,
        clock=time.process_time,
    )
    per_linear = medians["linear"] / 3
    per_circular = (medians["five"] - medians["linear"]) / 2
    yaw = medians["six"] - medians["five"]
    label = f"1 day x {turbines} turbine{'s' if turbines > 1 else ''}"
    print(
        f"transform {label} ({raw.num_rows:,} rows), CPU time, median of {repeat}: "
        f"3 linear {medians['linear'] * 1e3:.1f} ms, + 2 directions {medians['five'] * 1e3:.1f} ms,"
        f" + yaw_error {medians['six'] * 1e3:.1f} ms; per variable: linear "
        f"{per_linear * 1e3:.2f} ms, circular {per_circular * 1e3:.2f} ms "
        f"({per_circular / per_linear:.2f}x, <= 1.5x), yaw_error {yaw * 1e3:.2f} ms "
        f"({yaw / per_linear:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turbines", type=int, default=1)
    parser.add_argument("--days", type=int, default=366, help="the long range (2024: 366 days)")
    parser.add_argument("--fleet", type=int, default=50, help="turbines of the fleet-day figure")
    parser.add_argument("--directions-only", action="store_true", help="only the circular figures")
    args = parser.parse_args()
    directions_cost(args.turbines, DAY_RUNS)
    directions_cost(args.fleet, DAY_RUNS)
    if args.directions_only:
        return
    cost(1, args.turbines, DAY_RUNS)
    cost(args.days, args.turbines, YEAR_RUNS)
    cost(1, args.fleet, DAY_RUNS)
    accuracy(args.days, args.turbines)


if __name__ == "__main__":
    main()
