"""Read-only queries on the target database (the checks and the metadata read through these)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa


def signal_totals(
    engine: sa.Engine,
    turbines: Sequence[str],
    variables: Sequence[str],
    start: datetime,
    end: datetime,
) -> dict[str, tuple[int, float]]:
    """Rows and value sum per signal name of ``turbines`` x ``variables`` in ``[start, end)``."""
    import sqlalchemy as sa

    from wind_pipeline.etl.db import database_errors
    from wind_pipeline.etl.schema import Data, Signal

    query = (
        sa.select(Signal.name, sa.func.count(), sa.func.coalesce(sa.func.sum(Data.value), 0.0))
        .join(Data, Data.signal_id == Signal.id)
        .where(
            Signal.turbine.in_(list(turbines)),
            Signal.variable.in_(list(variables)),
            Data.timestamp >= start,
            Data.timestamp < end,
        )
        .group_by(Signal.name)
    )
    with database_errors("reading the target's totals"), engine.connect() as conn:
        return {name: (int(rows), float(total)) for name, rows, total in conn.execute(query)}
