"""Read-only queries on the target database (the checks and the metadata read through these)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

# Signal ids first, aggregated by id, names joined last: a plain join of signal and data was
# planned as a nested loop 350x slower once the month's statistics lagged (docs/pitfalls.md
# § PostgreSQL).
TOTALS_SQL = """
WITH totals AS (
    SELECT signal_id, count(*) AS n, sum(value) AS total FROM data
    WHERE signal_id = ANY(ARRAY(
        SELECT id FROM signal
        WHERE turbine = ANY(%(turbines)s::text[]) AND variable = ANY(%(variables)s::text[])
    ))
    AND timestamp >= %(start)s AND timestamp < %(end)s
    GROUP BY signal_id
)
SELECT s.name, t.n, coalesce(t.total, 0.0) FROM totals t JOIN signal s ON s.id = t.signal_id
"""


def signal_totals(
    engine: sa.Engine,
    turbines: Sequence[str],
    variables: Sequence[str],
    start: datetime,
    end: datetime,
) -> dict[str, tuple[int, float]]:
    """Rows and value sum per signal name of ``turbines`` x ``variables`` in ``[start, end)``."""
    from wind_pipeline.etl.db import database_errors

    asked = {"turbines": list(turbines), "variables": list(variables), "start": start, "end": end}
    with database_errors("reading the target's totals"), engine.connect() as conn:
        rows = conn.exec_driver_sql(TOTALS_SQL, asked)
        return {name: (int(n), float(total)) for name, n, total in rows}
