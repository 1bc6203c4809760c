"""QC against the generator's ground truth: a month of a small fleet seeded with ``--faults``.

The generator says which readings it corrupted and how (``fault_log``). Every injected
out-of-range, frozen and spike reading must be rejected for that very reason (recall 100 %), a
NULL it wrote must be missing, and nothing else may be rejected (precision 100 %). The readings
are read from the source database by plain SQL, the statuses come from ``quality.classify``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from connector_api import generator
from wind_pipeline.etl import quality
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.reference import connect, day_bounds, pipeline_limits, raw_from_source

DAYS, TURBINES = 30, 2
LINEAR = ("wind_speed", "power", "ambient_temperature")
DIRECTIONS = ("wind_direction", "nacelle_position")
# The direction faults the generator injects (a stuck vane; jumps and out-of-range readings of
# both): each must be in the month, so the 100 % below covers the circular rules too.
DIRECTION_FAULTS = {
    ("wind_direction", "frozen"),
    ("wind_direction", "spike"),
    ("wind_direction", "out_of_range"),
    ("nacelle_position", "spike"),
    ("nacelle_position", "out_of_range"),
}
# The rules as the pipeline reads them from GET /variables (yaw_error is no source column).
RULES = pipeline_limits()
EXPECTED_STATUS = {
    "out_of_range": quality.OUT_OF_RANGE,
    "frozen": quality.FROZEN,
    "spike": quality.SPIKE,
    "null": quality.MISSING,
}


def source_variables(source_url: str) -> tuple[str, ...]:
    """Every numeric column the seeded source has: the three linear ones, and the directions
    once the generator writes them."""
    with connect(source_url) as conn:
        names = conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'data'"
                " AND data_type = 'double precision' ORDER BY ordinal_position"
            )
        ).scalars()
        found = tuple(name for name in names if name in RULES)
    assert set(LINEAR) <= set(found)
    return found


def statuses(raw: pa.Table, variable: str) -> dict[tuple[str, int], int]:
    """{(turbine_id, timestamp_us): status} of every source row, by the pipeline's QC."""
    turbines = raw.column("turbine_id").to_pylist()
    names = sorted(set(turbines))
    codes = np.array([names.index(t) for t in turbines], np.int64)
    stamps = raw.column("timestamp").cast(pa.int64()).to_numpy()
    values = raw.column(variable).to_numpy(zero_copy_only=False).astype(np.float64)
    status = quality.classify(quality.day_segments(codes, stamps), stamps, values, RULES[variable])
    return dict(zip(zip(turbines, stamps.tolist(), strict=True), status.tolist(), strict=True))


def truth(start, end) -> dict[tuple[str, str, int], str]:
    """{(turbine_id, variable, timestamp_us): fault} of every corrupted reading (gaps have none)."""
    log = generator.fault_log(start, end, seed=42, turbines=TURBINES)
    stamps = log.column("timestamp").cast(pa.int64()).to_pylist()
    return {
        (turbine, variable, stamp): fault
        for turbine, variable, stamp, fault in zip(
            log.column("turbine_id").to_pylist(),
            log.column("variable").to_pylist(),
            stamps,
            log.column("fault").to_pylist(),
            strict=True,
        )
        if fault != "gap"
    }


def test_qc_finds_exactly_the_injected_faults(seed_source, source_url):
    seed_source(days=DAYS, faults=True, turbines=TURBINES)
    start, end = day_bounds(DAY, DAYS)
    injected = truth(start, end)
    kinds = Counter(injected.values())
    assert {"out_of_range", "frozen", "spike", "null"} <= kinds.keys()  # the month has each

    variables = source_variables(source_url)
    assert set(DIRECTIONS) <= set(variables)
    assert {(variable, fault) for (_, variable, _), fault in injected.items()} >= DIRECTION_FAULTS
    raw = raw_from_source(source_url, start, end, variables)
    assert set(raw.column("turbine_id").to_pylist()) == {"WTG01", "WTG02"}
    missed, wrong, false_alarms = [], [], []
    for variable in variables:
        for (turbine, stamp), status in statuses(raw, variable).items():
            fault = injected.get((turbine, variable, stamp))
            if fault is None:
                if status != quality.VALID:
                    false_alarms.append((turbine, variable, stamp, quality.REASONS[status]))
            elif status != EXPECTED_STATUS[fault]:
                found = quality.REASONS[status]
                (missed if status == quality.VALID else wrong).append(
                    (turbine, variable, stamp, fault, found)
                )
    # every corrupted reading is in the source (a NULL is a row too): none escaped the check
    rows = {(t, v, s) for t, s in zip(*_keys(raw), strict=True) for v in variables}
    assert injected.keys() <= rows

    assert not missed, f"recall below 100 %: {len(missed)} of {len(injected)}, e.g. {missed[:5]}"
    assert not wrong, f"rejected for another reason: {wrong[:5]}"
    assert not false_alarms, f"precision below 100 %: {len(false_alarms)}, e.g. {false_alarms[:5]}"


def test_transform_counts_each_reason_as_injected(seed_source, source_url):
    """The core's per-day QUALITY table and per-window ``rejected`` agree with the truth."""
    from wind_pipeline.etl.transform import transform

    seed_source(days=DAYS, faults=True, turbines=TURBINES)
    start, end = day_bounds(DAY, DAYS)
    variables = source_variables(source_url)
    log = generator.fault_log(start, end, seed=42, turbines=TURBINES)
    expected: Counter = Counter()
    for turbine, stamp, variable, fault in zip(
        *(log.column(c).to_pylist() for c in ("turbine_id", "timestamp", "variable", "fault")),
        strict=True,
    ):
        for name in variables if fault == "gap" else (variable,):  # a gap: every variable
            reason = "missing" if fault in ("gap", "null") else fault
            expected[(turbine, stamp.date(), name, reason)] += 1

    described = {name: RULES[name] for name in variables}
    raw = raw_from_source(source_url, start, end, variables)
    result = transform(raw, start, end, turbines=["WTG01", "WTG02"], variables=described)
    found: Counter = Counter()
    for row in result.quality.to_pylist():
        assert row["expected"] == 1440 and row["off_grid"] == 0
        assert sum(row[r] for r in quality.REASONS) == 1440, row
        for reason in ("missing", "out_of_range", "frozen", "spike"):
            if row[reason]:
                found[(row["turbine_id"], row["day"], row["variable"], reason)] = row[reason]
    assert found == expected

    rejected = Counter()
    for row in result.stats.select(["turbine_id", "timestamp", "rejected"]).to_pylist():
        rejected[(row["turbine_id"], row["timestamp"].date())] += row["rejected"]
    injected = Counter()
    for (turbine, day, _, reason), n in expected.items():
        if reason != "missing":
            injected[(turbine, day)] += n
    assert +rejected == injected


def _keys(raw: pa.Table) -> tuple[list[str], list[int]]:
    return raw.column("turbine_id").to_pylist(), raw.column("timestamp").cast(
        pa.int64()
    ).to_pylist()


def test_fault_free_values_are_the_same_with_and_without_faults():
    """The truth is only exact if faults touch nothing but the readings they log."""
    start, end = day_bounds(DAY, 3)
    clean = generator.generate(start, end, turbines=TURBINES, faults=False)
    faulty = generator.generate(start, end, turbines=TURBINES, faults=True)
    injected = truth(start, end)
    log = generator.fault_log(start, end, turbines=TURBINES)
    gaps = {
        (turbine, stamp)
        for turbine, stamp, fault in zip(*_keys(log), log.column("fault").to_pylist(), strict=True)
        if fault == "gap"
    }
    faulty_rows = {key: i for i, key in enumerate(zip(*_keys(faulty), strict=True))}
    assert len(faulty_rows) == faulty.num_rows == clean.num_rows - len(gaps)
    for variable in LINEAR + DIRECTIONS:
        before = clean.column(variable).to_pylist()
        after = faulty.column(variable).to_pylist()
        for i, key in enumerate(zip(*_keys(clean), strict=True)):
            if key in faulty_rows and (key[0], variable, key[1]) not in injected:
                assert after[faulty_rows[key]] == before[i], (variable, key)
