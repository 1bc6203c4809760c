"""Raw one-minute readings from the connector API, as a pandas frame or as plain arrays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from wind_pipeline.etl.transform import Readings

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from wind_pipeline.etl.client import ConnectorClient


def readings_from_table(table: pa.Table, variables: Sequence[str]) -> Readings:
    """The arrays of an Arrow table from the API: microseconds since the epoch, NaN for NULL."""
    import pyarrow as pa

    stamps = table.column("timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    values = {
        name: table.column(name).cast(pa.float64()).to_numpy().astype(np.float64, copy=False)
        for name in variables
    }
    return Readings(stamps.to_numpy().astype(np.int64, copy=False), values)


def extract_readings(
    client: ConnectorClient, start: datetime, end: datetime, variables: Sequence[str]
) -> Readings:
    """Readings in ``[start, end)`` without pandas (the ``wind-etl`` path)."""
    return readings_from_table(client.fetch(start, end, variables), variables)


def extract(
    client: ConnectorClient, start: datetime, end: datetime, variables: Sequence[str]
) -> pd.DataFrame:
    """Raw readings in ``[start, end)``: ``timestamp`` (UTC, µs) and a float64 column per variable.

    Sorted by time, NaN for a missing reading; an empty window gives an empty frame, because
    whether emptiness is an error is the caller's call (``--allow-empty``).
    """
    import pyarrow as pa

    table = client.fetch(start, end, variables)
    columns = [("timestamp", pa.timestamp("us", tz="UTC"))] + [(v, pa.float64()) for v in variables]
    frame = table.cast(pa.schema(columns)).to_pandas()
    if not frame["timestamp"].is_monotonic_increasing:
        frame = frame.sort_values("timestamp", kind="stable", ignore_index=True)
    return frame
