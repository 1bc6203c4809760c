"""Raw one-minute readings from the connector API, as the RAW Arrow table the transform takes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import arrays
from wind_pipeline.etl.errors import TerminalError

if TYPE_CHECKING:
    from wind_pipeline.etl.client import ConnectorClient

UTC_US = pa.timestamp("us", tz="UTC")
# Readings fetched (and then transformed) at once: ~200k is ~10 MB of Arrow, a few tens of MB
# while the transform runs, and large enough that a fetch's fixed cost (~10 ms) is small beside
# it. The pipeline sizes its blocks of days from it; Dagster offers it as a run config default.
BLOCK_READINGS = 200_000


def raw_schema(variables: Sequence[str]) -> pa.Schema:
    """RAW: ``turbine_id`` (dictionary), ``timestamp`` (µs, UTC), a float64 per variable."""
    return pa.schema(
        [("turbine_id", pa.dictionary(pa.int32(), pa.string())), ("timestamp", UTC_US)]
        + [(name, pa.float64()) for name in variables]
    )


def extract(
    client: ConnectorClient,
    start: datetime,
    end: datetime,
    variables: Sequence[str],
    turbines: Sequence[str] | None = None,
) -> pa.Table:
    """Readings in ``[start, end)`` in the RAW schema, sorted by (turbine_id, timestamp).

    An empty range gives an empty table: whether emptiness is an error is the caller's call
    (``allow_empty``). ``turbines`` None means every turbine of the source.
    """
    table = client.fetch(start, end, variables, turbines)
    schema = raw_schema(variables)
    if table.schema != schema:
        try:
            table = table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise TerminalError(
                f"the connector API's readings do not fit {schema.types}: {exc}"
            ) from exc
    return table if _sorted(table) else _sort(table)


def _sorted(table: pa.Table) -> bool:
    if table.num_rows < 2:
        return True
    ids = table.column("turbine_id")
    code = arrays.codes(ids, sorted(arrays.names(ids)))  # each row's turbine's rank by id
    micros = arrays.to_numpy(table.column("timestamp"), np.int64)
    same = code[1:] == code[:-1]
    return bool(np.all((code[1:] > code[:-1]) | (same & (micros[1:] >= micros[:-1]))))


def _sort(table: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    plain = table.column("turbine_id").cast(pa.string())
    indices = pc.sort_indices(
        pa.table({"t": plain, "s": table.column("timestamp")}),
        sort_keys=[("t", "ascending"), ("s", "ascending")],
    )
    return table.take(indices)
