"""The independent reference every ETL test compares against: docs/rules.md written in SQL.

Nothing here imports the pipeline's QC or statistics: PostgreSQL decides each reading's status
with its own window functions (gaps and islands for frozen runs, ``lag``/``lead`` over the
in-range readings for a spike's neighbours) and takes the statistics with its own
``avg/min/max/stddev_samp/count``. The readings come straight from the source database; the
target is read back through ``signal``.

Rows of ``reference_stats`` and ``target_stats`` share one shape, sorted by the first three fields:
``(turbine_id, variable, window_start (aware UTC), mean, min, max, std, count, rejected)``, with
None where a statistic is undefined (mean/min/max need count ≥ 1, std count ≥ 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

Row = tuple  # (turbine_id, variable, window_start, mean, min, max, std, count, rejected)

STATISTICS = ("mean", "min", "max", "std", "count", "rejected")
REJECTED_STATUSES = ("off_grid", "out_of_range", "frozen", "spike")

# Status of every reading of one variable, first rule that applies (§11). `ok` holds the
# in-range readings: the only ones a frozen run or a spike's neighbour can be made of.
_STATUS_SQL = """
WITH readings AS (
    SELECT d.turbine_id, d."timestamp" AS ts, CAST(d.{column} AS float8) AS v,
           CAST(d."timestamp" AT TIME ZONE 'UTC' AS date) AS day
    FROM data d
    WHERE d."timestamp" >= :start AND d."timestamp" < :end
      AND d.turbine_id = ANY(CAST(:turbines AS text[]))
),
screened AS (
    SELECT r.*,
           CASE WHEN v IS NULL THEN 'missing'
                WHEN mod(extract(epoch FROM ts), 60) <> 0 THEN 'off_grid'
                WHEN v < CAST(:low AS float8) OR v > CAST(:high AS float8) THEN 'out_of_range'
           END AS early
    FROM readings r
),
ok AS (
    SELECT turbine_id, ts, v, day FROM screened WHERE early IS NULL
),
islands AS (  -- equal values at consecutive minutes share ts - (their rank among equal values)
    SELECT ok.*,
           ts - make_interval(mins => CAST(row_number() OVER (
               PARTITION BY turbine_id, day, v ORDER BY ts) AS int)) AS island
    FROM ok
),
runs AS (
    SELECT islands.*, count(*) OVER (PARTITION BY turbine_id, day, v, island) AS run_length
    FROM islands
),
neighbours AS (  -- the previous and next in-range readings of the same turbine and day
    SELECT runs.*,
           lag(ts) OVER w AS prev_ts, lag(v) OVER w AS prev_v,
           lead(ts) OVER w AS next_ts, lead(v) OVER w AS next_v
    FROM runs
    WINDOW w AS (PARTITION BY turbine_id, day ORDER BY ts)
),
judged AS (
    SELECT turbine_id, ts, v,
           CASE WHEN run_length >= 10
                     AND v IS DISTINCT FROM CAST(:low AS float8)
                     AND v IS DISTINCT FROM CAST(:high AS float8) THEN 'frozen'
                WHEN prev_ts = ts - interval '1 minute' AND next_ts = ts + interval '1 minute'
                 AND ((v - prev_v > CAST(:step AS float8) AND v - next_v > CAST(:step AS float8))
                   OR (prev_v - v > CAST(:step AS float8) AND next_v - v > CAST(:step AS float8)))
                     THEN 'spike'
                ELSE 'valid'
           END AS status
    FROM neighbours
),
statuses AS (
    SELECT turbine_id, ts, v, early AS status FROM screened WHERE early IS NOT NULL
    UNION ALL
    SELECT turbine_id, ts, v, status FROM judged
)
"""
_PLAIN_STATUS_SQL = """
WITH statuses AS (
    SELECT d.turbine_id, d."timestamp" AS ts, CAST(d.{column} AS float8) AS v,
           CASE WHEN d.{column} IS NULL THEN 'missing' ELSE 'valid' END AS status
    FROM data d
    WHERE d."timestamp" >= :start AND d."timestamp" < :end
      AND d.turbine_id = ANY(CAST(:turbines AS text[]))
)
"""
_STATS_SQL = """,
windows AS (
    SELECT t.id AS turbine_id, w AS window_start
    FROM unnest(CAST(:turbines AS text[])) AS t(id)
    CROSS JOIN generate_series(CAST(:start AS timestamptz),
                               CAST(:end AS timestamptz) - interval '10 minutes',
                               interval '10 minutes') AS w
),
aggregated AS (
    SELECT turbine_id,
           date_bin('10 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS window_start,
           avg(v) FILTER (WHERE status = 'valid') AS mean,
           min(v) FILTER (WHERE status = 'valid') AS min,
           max(v) FILTER (WHERE status = 'valid') AS max,
           stddev_samp(v) FILTER (WHERE status = 'valid') AS std,
           count(*) FILTER (WHERE status = 'valid') AS count,
           count(*) FILTER (WHERE status IN ('off_grid', 'out_of_range', 'frozen', 'spike'))
               AS rejected
    FROM statuses
    GROUP BY 1, 2
)
SELECT w.turbine_id, w.window_start, a.mean, a.min, a.max, a.std,
       coalesce(a.count, 0) AS count, coalesce(a.rejected, 0) AS rejected
FROM windows w LEFT JOIN aggregated a USING (turbine_id, window_start)
ORDER BY w.turbine_id, w.window_start
"""
_TARGET_SQL = """
SELECT s.turbine, s.variable, d."timestamp",
       {columns}
FROM data d JOIN signal s ON s.id = d.signal_id
WHERE d."timestamp" >= :start AND d."timestamp" < :end
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """A connection whose session speaks UTC (timestamps come back aware, in UTC)."""
    engine = sa.create_engine(
        url, poolclass=sa.pool.NullPool, connect_args={"options": "-c timezone=UTC"}
    )
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def day_bounds(day: date, days: int = 1) -> tuple[datetime, datetime]:
    """[start, end) of ``days`` UTC days from ``day``, aware."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=days)


def default_limits() -> Mapping[str, Any]:
    """The API's own description of its columns (tests may see both packages)."""
    from connector_api.schema import KNOWN_VARIABLES

    return KNOWN_VARIABLES


def pipeline_limits(names: Sequence[str] | None = None) -> dict[str, Any]:
    """The API's descriptions as the pipeline's ``Variable``s (what ``fetch_catalogue`` builds)."""
    from wind_pipeline.etl.catalogue import Variable

    return {
        name: Variable(v.name, v.unit, v.description, v.physical_min, v.physical_max, v.max_step)
        for name, v in default_limits().items()
        if names is None or name in names
    }


def _limit(limits: Mapping[str, Any], variable: str, name: str) -> float | None:
    described = limits.get(variable)
    return None if described is None else getattr(described, name, None)


def _turbines(conn: sa.Connection, turbines: Sequence[str] | None) -> list[str]:
    if turbines is not None:
        return list(turbines)
    return list(conn.execute(sa.text("SELECT id FROM turbine ORDER BY id")).scalars())


def _query(conn, variable, start, end, turbines, limits, qc, tail):
    column = conn.dialect.identifier_preparer.quote(variable)
    head = (_STATUS_SQL if qc else _PLAIN_STATUS_SQL).format(column=column)
    params = {
        "start": start,
        "end": end,
        "turbines": turbines,
        "low": _limit(limits, variable, "physical_min"),
        "high": _limit(limits, variable, "physical_max"),
        "step": _limit(limits, variable, "max_step"),
    }
    return conn.execute(sa.text(head + tail), params).all()


def reference_stats(
    source_url: str,
    start: datetime,
    end: datetime,
    *,
    turbines: Sequence[str] | None = None,
    variables: Sequence[str] = ("wind_speed", "power"),
    limits: Mapping[str, Any] | None = None,
    qc: bool = True,
) -> list[Row]:
    """Every window of [start, end) for each turbine and variable, as SQL computes it.

    ``turbines`` None means every row of the source's ``turbine`` table. ``limits`` maps a
    variable to an object with ``physical_min``, ``physical_max`` and ``max_step`` (absent or None:
    no limit); default the API's ``KNOWN_VARIABLES``. ``qc=False``: the plain statistics of every
    non-NULL reading, ``rejected`` 0.
    """
    limits = default_limits() if limits is None else limits
    rows: list[Row] = []
    with connect(source_url) as conn:
        turbine_ids = _turbines(conn, turbines)
        for variable in variables:
            for r in _query(conn, variable, start, end, turbine_ids, limits, qc, _STATS_SQL):
                window = r.window_start.astimezone(UTC)
                rows.append(
                    (
                        r.turbine_id,
                        variable,
                        window,
                        r.mean,
                        r.min,
                        r.max,
                        r.std,
                        r.count,
                        r.rejected,
                    )
                )
    rows.sort(key=lambda row: row[:3])
    return rows


def reference_status(
    source_url: str,
    start: datetime,
    end: datetime,
    *,
    turbines: Sequence[str] | None = None,
    variables: Sequence[str] = ("wind_speed", "power"),
    limits: Mapping[str, Any] | None = None,
    qc: bool = True,
) -> list[tuple[str, str, datetime, float | None, str]]:
    """Every source row's §11 status: ``(turbine_id, variable, timestamp, value, status)``, sorted.

    Status names are those of ``wind_pipeline.etl.quality.REASONS``. Absent minutes have no row.
    """
    limits = default_limits() if limits is None else limits
    rows = []
    tail = "SELECT turbine_id, ts, v, status FROM statuses"
    with connect(source_url) as conn:
        turbine_ids = _turbines(conn, turbines)
        for variable in variables:
            for r in _query(conn, variable, start, end, turbine_ids, limits, qc, tail):
                rows.append((r.turbine_id, variable, r.ts.astimezone(UTC), r.v, r.status))
    rows.sort(key=lambda row: row[:3])
    return rows


def target_stats(target_url: str, start: datetime, end: datetime) -> list[Row]:
    """The target's windows in [start, end), read back through ``signal`` in the same shape."""
    columns = ",\n       ".join(
        f"max(d.value) FILTER (WHERE s.statistic = '{name}') AS {name}" for name in STATISTICS
    )
    with connect(target_url) as conn:
        result = conn.execute(
            sa.text(_TARGET_SQL.format(columns=columns)), {"start": start, "end": end}
        )
        return [
            (
                r.turbine,
                r.variable,
                r.timestamp.astimezone(UTC),
                r.mean,
                r.min,
                r.max,
                r.std,
                _integer(r.count),
                _integer(r.rejected),
            )
            for r in result
        ]


def rows_from_stats(stats: pa.Table) -> list[Row]:
    """The transform's STATS table (``Transformed.stats``) in the reference's shape, sorted."""
    columns = {name: stats.column(name).to_pylist() for name in stats.column_names}
    rows = [
        (turbine, variable, window.astimezone(UTC), *values)
        for turbine, variable, window, *values in zip(
            columns["turbine_id"],
            columns["variable"],
            columns["timestamp"],
            *(columns[name] for name in STATISTICS),
            strict=True,
        )
    ]
    rows.sort(key=lambda row: row[:3])
    return rows


def _integer(value: float | None) -> int | None:
    return None if value is None else int(value)


def _differs(got: Any, want: Any, tolerance: float) -> bool:
    if got is None or want is None:
        return (got is None) != (want is None)
    return not math.isclose(got, want, rel_tol=tolerance, abs_tol=tolerance)


def assert_stats_equal(actual: Sequence[Row], expected: Sequence[Row], tol: float = 1e-9) -> None:
    """Same windows; mean/min/max/std to ``tol`` (relative and absolute), counts exactly.

    The first differing window is named with both rows, not just "lists differ".
    """
    got = {row[:3]: row[3:] for row in actual}
    want = {row[:3]: row[3:] for row in expected}
    assert len(got) == len(actual), "duplicate windows in the actual rows"
    missing, extra = want.keys() - got.keys(), got.keys() - want.keys()
    assert not missing and not extra, (sorted(missing)[:3], sorted(extra)[:3])
    for key, want_values in want.items():
        got_values = got[key]
        mismatch = [
            name
            for name, g, w in zip(STATISTICS, got_values, want_values, strict=True)
            if (g != w if name in ("count", "rejected") else _differs(g, w, tol))
        ]
        assert not mismatch, (key, mismatch, got_values, want_values)


def raw_from_source(
    source_url: str,
    start: datetime,
    end: datetime,
    variables: Sequence[str] = ("wind_speed", "power"),
    turbines: Sequence[str] | None = None,
) -> pa.Table:
    """The source rows in the core's RAW schema (what ``extract`` returns), read by plain SQL.

    For tests of the transform or the load that skip the API.
    """
    with connect(source_url) as conn:
        quote = conn.dialect.identifier_preparer.quote
        columns = ", ".join(f"CAST({quote(v)} AS float8)" for v in variables)
        sql = (
            f'SELECT turbine_id, "timestamp", {columns} FROM data '
            'WHERE "timestamp" >= :start AND "timestamp" < :end '
            'AND turbine_id = ANY(CAST(:turbines AS text[])) ORDER BY turbine_id, "timestamp"'
        )
        turbine_ids = _turbines(conn, turbines)
        rows = conn.execute(sa.text(sql), {"start": start, "end": end, "turbines": turbine_ids})
        records = rows.all()
    arrays = [
        pa.array([r[0] for r in records], pa.string()),
        pa.array([r[1] for r in records], pa.timestamp("us", tz="UTC")),
        *(pa.array([r[2 + i] for r in records], pa.float64()) for i in range(len(variables))),
    ]
    return pa.Table.from_arrays(arrays, names=["turbine_id", "timestamp", *variables])


def source_row_count(source_url: str) -> int:
    with connect(source_url) as conn:
        return conn.execute(sa.text("SELECT count(*) FROM data")).scalar_one()
