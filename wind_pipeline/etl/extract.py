"""Raw one-minute readings from the connector API, as a pandas frame or as plain arrays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from wind_pipeline.etl.errors import TerminalError
from wind_pipeline.etl.transform import Readings

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from wind_pipeline.etl.client import ConnectorClient


# Arrow timestamp units as (multiplier, divisor) to microseconds.
_TO_MICROS = {"s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000)}


def readings_from_table(table: pa.Table, variables: Sequence[str]) -> Readings:
    """The arrays of an Arrow table from the API: microseconds since the epoch, NaN for NULL.

    Read straight from the Arrow buffers: pyarrow's own ``cast``/``to_numpy`` import pandas and
    pyarrow.compute, which would cost ``wind-etl`` a third of a second.
    """
    stamps = table.column("timestamp")
    scale = _TO_MICROS.get(getattr(stamps.type, "unit", ""))
    if scale is None:
        raise TerminalError(f"the API's timestamp column has type {stamps.type}, not a timestamp")
    micros = _numpy(stamps, np.int64) * scale[0] // scale[1]
    return Readings(micros, {name: _numpy(table.column(name), np.float64) for name in variables})


def _numpy(column: pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    """One numpy array from all chunks; NULL becomes NaN (floats) or stays as stored (ints)."""
    if dtype is np.float64 and str(column.type) != "double":
        import pyarrow as pa  # another numeric type: let pyarrow convert (slower import)

        column = column.cast(pa.float64())
    parts = [_chunk_numpy(chunk, dtype) for chunk in column.chunks]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _chunk_numpy(chunk: pa.Array, dtype: type[np.generic]) -> np.ndarray:
    validity, data = chunk.buffers()[:2]
    window = slice(chunk.offset, chunk.offset + len(chunk))
    values = np.frombuffer(data, dtype=dtype)[window] if data is not None else np.empty(0, dtype)
    if validity is None or chunk.null_count == 0:
        return values
    valid = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[window]
    return np.where(valid.astype(bool), values, np.nan if dtype is np.float64 else 0)


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
