"""The readings of a range as Arrow tables, block by block, with or without faults and their
truth: what ``connector-api seed`` writes, and what the tests compare against."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pyarrow as pa

from connector_api import schema
from connector_api.calendar import midnight
from connector_api.generator import faults as faulting
from connector_api.generator import tables
from connector_api.generator.model import model as farm_model

_ORDER = [
    (schema.TURBINE_COLUMN, "ascending"),
    (schema.TIME_COLUMN, "ascending"),
    ("variable", "ascending"),
]


def generate_blocks(
    start: datetime,
    end: datetime,
    *,
    seed: int = 42,
    turbines: int = 1,
    faults: bool = False,
    ramp: bool = False,
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    """Readings of ``[start, end)`` in blocks of days: (rows, fault log or None) per block
    (``ramp``: small blocks first, as ``tables.day_blocks`` cuts them for the seed's COPY).

    Rows: ``turbine_id`` (dictionary), ``timestamp`` (UTC), one float64 per variable (NULL where
    a reading is missing); gap minutes have no row. Ordered by (turbine_id, timestamp) per block.
    """
    model = farm_model(turbines)
    for days in tables.day_blocks(start, end, turbines, ramp=ramp):
        block = model.block(seed, days)
        if faults:
            faulting.inject(seed, model, block)
        rows = tables.rows(model, block, start, end)
        yield rows, tables.fault_rows(model, block, start, end) if faults else None


def generate(
    start: datetime, end: datetime, *, seed: int = 42, turbines: int = 1, faults: bool = False
) -> pa.Table:
    """All readings of ``[start, end)`` as one table (for tests and small ranges)."""
    blocks = generate_blocks(start, end, seed=seed, turbines=turbines, faults=faults)
    return pa.concat_tables([rows for rows, _ in blocks]).unify_dictionaries().combine_chunks()


def fault_log(
    start: datetime | date, end: datetime | date, *, seed: int = 42, turbines: int = 1
) -> pa.Table:
    """The ground truth of ``--faults`` over ``[start, end)``: one row per corrupted reading.

    Columns ``turbine_id, timestamp, variable, fault`` (variable NULL for a gap, whose row is
    absent; fault one of ``gap, null, frozen, out_of_range, spike``), sorted by (turbine_id,
    timestamp, variable).
    """
    first, last = (t if isinstance(t, datetime) else midnight(t) for t in (start, end))
    blocks = generate_blocks(first, last, seed=seed, turbines=turbines, faults=True)
    return pa.concat_tables([log for _, log in blocks]).sort_by(_ORDER)
