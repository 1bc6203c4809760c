"""Loading a STATS table whose days and turbines are its own: what tests and benchmarks load.

The pipeline always knows its day and the turbines it replaces and calls ``load_day``; a test
that built statistics by hand finds them in the table instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import date

import pyarrow as pa

from wind_pipeline.etl import arrays, db
from wind_pipeline.etl.calendar import split_by_day
from wind_pipeline.etl.catalogue import Variable
from wind_pipeline.etl.load import load_day


def load(
    target: db.RawConnectionSource, stats: pa.Table, variables: Mapping[str, Variable]
) -> dict[date, int]:
    """Replace, day by day, the rows of the (day, turbine)s found in ``stats``; rows per day.

    Days already committed stay when a later one fails.
    """
    written: dict[date, int] = {}
    conn = db.connect(target)
    try:
        for day, part in split_by_day(stats):
            turbines = arrays.names(part.column("turbine_id"))
            written[day] = load_day(conn, day, part, turbines=turbines, variables=variables)
    finally:
        with contextlib.suppress(Exception):  # a dropped connection cannot be closed cleanly
            conn.close()
    return written
