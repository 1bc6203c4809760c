"""Read-only queries on the target database, for checks and materialization metadata."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import sqlalchemy as sa


def target_signal_totals(
    engine: sa.Engine, variables: list[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Rows and value sum per signal of ``variables`` stored in the target for ``[start, end)``."""
    import sqlalchemy as sa

    from wind_pipeline.etl.schema import Data, Signal

    query = (
        sa.select(Signal.name, sa.func.count(), sa.func.coalesce(sa.func.sum(Data.value), 0.0))
        .join(Data, Data.signal_id == Signal.id)
        .where(Signal.variable.in_(variables), Data.timestamp >= start, Data.timestamp < end)
        .group_by(Signal.name)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=["signal", "rows", "sum"]).set_index("signal")
    return frame.astype({"rows": "int64", "sum": "float64"})
