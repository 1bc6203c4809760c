"""The generated blocks as Arrow tables and CSV: the rows COPY writes and the truth log.

Rows are ordered by (turbine_id, timestamp) and cut to the asked range; the readings of a block
are computed for whole days, so a partial day is the same minutes as a whole one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv

from connector_api import schema
from connector_api.calendar import MINUTE_US, MINUTES_PER_DAY, midnight, to_us
from connector_api.generator.model import VARIABLES, Block, Model

# The columns of a generated row, in the order of the CSV that COPY reads.
COLUMNS = (schema.TURBINE_COLUMN, schema.TIME_COLUMN, *VARIABLES)
# Rows per generated block (about 15 MB of CSV per COPY), whatever the fleet.
BLOCK_ROWS = 250_000
# With ``ramp``, the first block is this fraction of a full one and each next one twice the last,
# up to BLOCK_ROWS: the seed's first COPY waits for the first block alone (its generation and CSV
# overlap nothing), so a small one starts PostgreSQL sooner. A block's values depend only on its
# days, never on how the range is cut; only the order of rows across blocks does.
FIRST_BLOCK_SHARE = 1 / 16


def day_blocks(
    start: datetime, end: datetime, turbines: int, *, ramp: bool = False
) -> Iterator[list[date]]:
    """The UTC days touching ``[start, end)``, a block of about BLOCK_ROWS rows at a time (with
    ``ramp``, smaller blocks first, doubling up to that)."""
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    per_block = max(1, BLOCK_ROWS // (turbines * MINUTES_PER_DAY))
    size = max(1, int(per_block * FIRST_BLOCK_SHARE)) if ramp else per_block
    ordinals = range(first.toordinal(), last.toordinal() + 1)
    at = 0
    while at < len(ordinals):
        yield [date.fromordinal(o) for o in ordinals[at : at + size]]
        at, size = at + size, min(per_block, 2 * size)


def _day_us(days: list[date]) -> np.ndarray:
    return np.array([to_us(midnight(d)) for d in days], dtype=np.int64)


def rows(model: Model, block: Block, start: datetime, end: datetime) -> pa.Table:
    """The block as rows ordered by (turbine_id, timestamp), cut to [start, end), gaps removed."""
    n_days, n_turbines = len(block.days), len(model.fleet)
    stamps = _day_us(block.days)[:, None] + np.arange(MINUTES_PER_DAY) * MINUTE_US
    stamps = np.broadcast_to(stamps[None], (n_turbines, n_days, MINUTES_PER_DAY))
    select = (stamps >= to_us(start)) & (stamps < to_us(end))
    if block.keep is not None:
        select = select & np.moveaxis(block.keep, 1, 0)
    index = np.broadcast_to(np.arange(n_turbines, dtype=np.int32)[:, None, None], select.shape)[
        select
    ]
    columns = {
        schema.TURBINE_COLUMN: pa.DictionaryArray.from_arrays(
            pa.array(index), pa.array([t.id for t in model.fleet])
        ),
        schema.TIME_COLUMN: pa.array(stamps[select], type=pa.timestamp("us", tz="UTC")),
    }
    for name in VARIABLES:
        # (days, turbines, minutes) -> (turbines, days, minutes): turbine-major rows
        values = np.moveaxis(block.values[name], 1, 0)[select]
        columns[name] = pa.array(values, mask=np.isnan(values))
    return pa.table(columns)


def fault_rows(model: Model, block: Block, start: datetime, end: datetime) -> pa.Table:
    """The block's truth log cut to [start, end): ``turbine_id, timestamp, variable, fault``."""
    found = block.faults or []
    day_us = _day_us(block.days)
    stamps = np.array([day_us[i] + m * MINUTE_US for i, _, m, _, _ in found], dtype=np.int64)
    table = pa.table(
        {
            schema.TURBINE_COLUMN: pa.array([model.fleet[j].id for _, j, _, _, _ in found]),
            schema.TIME_COLUMN: pa.array(stamps, type=pa.timestamp("us", tz="UTC")),
            "variable": pa.array([name for _, _, _, name, _ in found], type=pa.string()),
            "fault": pa.array([kind for _, _, _, _, kind in found], type=pa.string()),
        }
    )
    inside = (stamps >= to_us(start)) & (stamps < to_us(end))
    return table.filter(pa.array(inside)).sort_by(
        [
            (schema.TURBINE_COLUMN, "ascending"),
            (schema.TIME_COLUMN, "ascending"),
            ("variable", "ascending"),
        ]
    )


def to_csv(table: pa.Table) -> bytes:
    """The rows as COPY-ready CSV (no header, empty field = NULL), built in C by pyarrow.

    Timestamps are written without an offset: load them in a session whose TimeZone is UTC.
    """
    naive = table.set_column(
        1, schema.TIME_COLUMN, table.column(1).cast(pa.timestamp("s"))
    )  # pyarrow formats a time-zoned timestamp 20x slower; the COPY session is UTC
    sink = io.BytesIO()
    pyarrow.csv.write_csv(
        naive, sink, pyarrow.csv.WriteOptions(include_header=False, quoting_style="none")
    )
    return sink.getvalue()


def write_faults_csv(table: pa.Table, sink, *, header: bool = True) -> None:
    """The fault log as CSV (``turbine_id,timestamp,variable,fault``), timestamps ISO UTC ``Z``.

    A gap's variable is an empty field.
    """
    seconds = table.column(1).cast(pa.timestamp("s", tz="UTC"))
    stamps = pyarrow.compute.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
    if header:  # pyarrow would quote the names
        sink.write((",".join(table.column_names) + "\n").encode())
    pyarrow.csv.write_csv(
        table.set_column(1, schema.TIME_COLUMN, stamps),
        sink,
        pyarrow.csv.WriteOptions(include_header=False, quoting_style="none"),
    )
