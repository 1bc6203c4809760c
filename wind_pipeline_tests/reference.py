"""The independent reference every ETL test compares against: the README's "Data quality" and
"Directions" rules and the statistics of the target, written in SQL.

Nothing here imports the pipeline's QC or statistics: PostgreSQL decides each reading's status
with its own window functions (gaps and islands for frozen runs, ``lag``/``lead`` over the
in-range readings for a spike's neighbours) from the rules of the variables' descriptions
(``GET /variables``: bounds, ``max_step``, ``kind``, ``frozen_minutes``, ``frozen_exempt``), and
takes the statistics with its own ``avg/min/max/stddev_samp/count`` or, for a circular variable,
``atan2(avg(sin), avg(cos))``, Yamartino's sigma and min/max unwrapped around the mean. The readings
come straight from the source database; the target is read back through ``signal``.

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

# Status of every reading of one source column, first rule that applies (README "Data quality"),
# as CTEs named {p}…, so that yaw_error can judge its two columns side by side. `ok` holds the
# in-range readings: the only ones a frozen run or a spike's neighbour can be made of. `k` is the
# value a frozen run compares (a circular 360 is 0); `dp`/`dn` are v - previous and v - next,
# wrapped into [-180, 180) for a circular variable.
_STATUS_CTES = """
{p}readings AS (
    SELECT d.turbine_id, d."timestamp" AS ts, CAST(d.{column} AS float8) AS v,
           CAST(d."timestamp" AT TIME ZONE 'UTC' AS date) AS day
    FROM data d
    WHERE d."timestamp" >= :start AND d."timestamp" < :end
      AND d.turbine_id = ANY(CAST(:turbines AS text[]))
),
{p}screened AS (
    SELECT r.*,
           CASE WHEN v IS NULL THEN 'missing'
                WHEN mod(extract(epoch FROM ts), 60) <> 0 THEN 'off_grid'
                WHEN v < CAST(:{p}low AS float8) OR v > CAST(:{p}high AS float8) THEN 'out_of_range'
           END AS early
    FROM {p}readings r
),
{p}ok AS (
    SELECT turbine_id, ts, v, day,
           CASE WHEN CAST(:{p}circular AS boolean) AND v = 360 THEN 0 ELSE v END AS k
    FROM {p}screened WHERE early IS NULL
),
{p}islands AS (  -- equal values at consecutive minutes share ts - (their rank among equal values)
    SELECT o.*,
           ts - make_interval(mins => CAST(row_number() OVER (
               PARTITION BY turbine_id, day, k ORDER BY ts) AS int)) AS island
    FROM {p}ok o
),
{p}runs AS (
    SELECT i.*, count(*) OVER (PARTITION BY turbine_id, day, k, island) AS run_length
    FROM {p}islands i
),
{p}neighbours AS (  -- the previous and next in-range readings of the same turbine and day
    SELECT r.*,
           lag(ts) OVER w AS prev_ts, lag(v) OVER w AS prev_v,
           lead(ts) OVER w AS next_ts, lead(v) OVER w AS next_v
    FROM {p}runs r
    WINDOW w AS (PARTITION BY turbine_id, day ORDER BY ts)
),
{p}steps AS (
    SELECT n.*,
           CASE WHEN CAST(:{p}circular AS boolean)
                THEN (v - prev_v + 180) - 360 * floor((v - prev_v + 180) / 360) - 180
                ELSE v - prev_v END AS dp,
           CASE WHEN CAST(:{p}circular AS boolean)
                THEN (v - next_v + 180) - 360 * floor((v - next_v + 180) / 360) - 180
                ELSE v - next_v END AS dn
    FROM {p}neighbours n
),
{p}judged AS (
    SELECT turbine_id, ts, v,
           CASE WHEN run_length >= CAST(:{p}frozen_minutes AS int)
                     AND NOT (k = ANY(CAST(:{p}exempt AS float8[]))) THEN 'frozen'
                WHEN prev_ts = ts - interval '1 minute' AND next_ts = ts + interval '1 minute'
                 AND ((dp > CAST(:{p}step AS float8) AND dn > CAST(:{p}step AS float8))
                   OR (dp < -CAST(:{p}step AS float8) AND dn < -CAST(:{p}step AS float8)))
                     THEN 'spike'
                ELSE 'valid'
           END AS status
    FROM {p}steps
),
{p}statuses AS (
    SELECT turbine_id, ts, v, early AS status FROM {p}screened WHERE early IS NOT NULL
    UNION ALL
    SELECT turbine_id, ts, v, status FROM {p}judged
)"""
_PLAIN_STATUS_CTES = """
{p}statuses AS (
    SELECT d.turbine_id, d."timestamp" AS ts, CAST(d.{column} AS float8) AS v,
           CASE WHEN d.{column} IS NULL THEN 'missing' ELSE 'valid' END AS status
    FROM data d
    WHERE d."timestamp" >= :start AND d."timestamp" < :end
      AND d.turbine_id = ANY(CAST(:turbines AS text[]))
)"""
# yaw_error: d(wind_direction, nacelle_position) at each row; its status is the first rule that
# applies to either reading (valid exactly when both are).
_DERIVED_STATUS_CTE = """,
statuses AS (
    SELECT a.turbine_id, a.ts,
           CASE WHEN a.v IS NOT NULL AND b.v IS NOT NULL
                THEN (a.v - b.v + 180) - 360 * floor((a.v - b.v + 180) / 360) - 180 END AS v,
           CASE WHEN a.status = 'valid' THEN b.status
                WHEN b.status = 'valid' THEN a.status
                WHEN array_position(ARRAY['missing', 'off_grid', 'out_of_range', 'frozen',
                                          'spike'], a.status)
                  <= array_position(ARRAY['missing', 'off_grid', 'out_of_range', 'frozen',
                                          'spike'], b.status) THEN a.status
                ELSE b.status
           END AS status
    FROM a_statuses a JOIN b_statuses b ON b.turbine_id = a.turbine_id AND b.ts = a.ts
)"""
_WINDOWS_SQL = """,
windows AS (
    SELECT t.id AS turbine_id, w AS window_start
    FROM unnest(CAST(:turbines AS text[])) AS t(id)
    CROSS JOIN generate_series(CAST(:start AS timestamptz),
                               CAST(:end AS timestamptz) - interval '10 minutes',
                               interval '10 minutes') AS w
),
binned AS (
    SELECT turbine_id, ts, v, status,
           date_bin('10 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS window_start
    FROM statuses
),
counted AS (
    SELECT turbine_id, window_start,
           count(*) FILTER (WHERE status = 'valid') AS count,
           count(*) FILTER (WHERE status IN ('off_grid', 'out_of_range', 'frozen', 'spike'))
               AS rejected
    FROM binned
    GROUP BY 1, 2
)"""
_STATS_SQL = """,
aggregated AS (
    SELECT turbine_id, window_start,
           avg(v) AS mean, min(v) AS min, max(v) AS max, stddev_samp(v) AS std
    FROM binned WHERE status = 'valid'
    GROUP BY 1, 2
)"""
# Circular statistics (README "Directions"), written from the definitions: the mean is the
# direction of the mean unit vector; 1 - R² is the mean over all pairs of the window's readings
# of 1 - cos(θi - θj) (= 1 - |mean unit vector|², exact for equal readings), Yamartino's sigma from
# ε = √(1 - R²); min/max unwrap each reading into (mean - 180, mean + 180] and wrap back.
_CIRCULAR_STATS_SQL = """,
valid AS (
    SELECT turbine_id, window_start, v FROM binned WHERE status = 'valid'
),
vectors AS (
    SELECT turbine_id, window_start, count(*) AS n,
           avg(sin(radians(v))) AS s, avg(cos(radians(v))) AS c
    FROM valid GROUP BY 1, 2
),
centred AS (
    SELECT x.*, sqrt(s * s + c * c) AS r,
           degrees(atan2(s, c)) - 360 * floor((degrees(atan2(s, c)) - :origin) / 360) AS m
    FROM vectors x
),
pairs AS (
    SELECT a.turbine_id, a.window_start,
           sum(2 * power(sin(radians(a.v - b.v) / 2), 2)) AS total
    FROM valid a JOIN valid b USING (turbine_id, window_start)
    GROUP BY 1, 2
),
unwrapped AS (
    SELECT v.turbine_id, v.window_start,
           min(v.v - 360 * ceil((v.v - c.m - 180) / 360)) AS lo,
           max(v.v - 360 * ceil((v.v - c.m - 180) / 360)) AS hi
    FROM valid v JOIN centred c USING (turbine_id, window_start)
    GROUP BY 1, 2
),
yamartino AS (
    SELECT c.turbine_id, c.window_start, c.n, c.r, c.m, u.lo, u.hi,
           sqrt(greatest(0.0, least(1.0, p.total / (c.n * c.n)))) AS eps
    FROM centred c JOIN pairs p USING (turbine_id, window_start)
                   JOIN unwrapped u USING (turbine_id, window_start)
),
aggregated AS (
    SELECT turbine_id, window_start,
           CASE WHEN r >= 1e-9 THEN m END AS mean,
           CASE WHEN r >= 1e-9 THEN lo - 360 * floor((lo - :origin) / 360) END AS min,
           CASE WHEN r >= 1e-9 THEN hi - 360 * floor((hi - :origin) / 360) END AS max,
           CASE WHEN n >= 2
                THEN degrees(asin(eps)) * (1 + (2 / sqrt(3) - 1) * power(eps, 3)) END AS std
    FROM yamartino
)"""
_RESULT_SQL = """
SELECT w.turbine_id, w.window_start, a.mean, a.min, a.max, a.std,
       coalesce(n.count, 0) AS count, coalesce(n.rejected, 0) AS rejected
FROM windows w
LEFT JOIN counted n USING (turbine_id, window_start)
LEFT JOIN aggregated a USING (turbine_id, window_start)
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
    """The API's descriptions as the pipeline's ``Variable``s (what ``fetch_catalogue`` builds),
    ``yaw_error`` included when both directions are described."""
    from wind_pipeline.etl.catalogue import Variable, with_derived

    described = {
        name: Variable(
            v.name,
            v.unit,
            v.description,
            v.physical_min,
            v.physical_max,
            v.max_step,
            **{
                field: getattr(v, field)
                for field in ("kind", "frozen_minutes", "frozen_exempt")
                if hasattr(v, field)
            },
        )
        for name, v in default_limits().items()
    }
    return {
        name: v for name, v in with_derived(described).items() if names is None or name in names
    }


YAW_ERROR, YAW_ERROR_SOURCES = "yaw_error", ("wind_direction", "nacelle_position")
_ABSENT = object()


def _field(limits: Mapping[str, Any], variable: str, name: str, default: Any = None) -> Any:
    """A field of a variable's description: an object's attribute or a /variables JSON key."""
    described = limits.get(variable)
    if described is None:
        return default
    if isinstance(described, Mapping):
        value = described.get(name, _ABSENT)
    else:
        value = getattr(described, name, _ABSENT)
    return default if value is _ABSENT else value


def _rule_params(limits: Mapping[str, Any], variable: str, prefix: str = "") -> dict[str, Any]:
    """The QC numbers of one column, read from its description (absent fields: today's rules)."""
    low = _field(limits, variable, "physical_min")
    high = _field(limits, variable, "physical_max")
    exempt = _field(limits, variable, "frozen_exempt")
    if exempt is None:  # a description without frozen_exempt: the bounds may repeat
        exempt = [v for v in (low, high) if v is not None]
    circular = _field(limits, variable, "kind", "linear") == "circular"
    if circular:
        exempt = [0.0 if v == 360 else v for v in exempt]
    return {
        f"{prefix}low": low,
        f"{prefix}high": high,
        f"{prefix}step": _field(limits, variable, "max_step"),
        f"{prefix}circular": circular,
        f"{prefix}frozen_minutes": _field(limits, variable, "frozen_minutes", 10),
        f"{prefix}exempt": [float(v) for v in exempt],
    }


def _is_circular(limits: Mapping[str, Any], variable: str) -> bool:
    return variable == YAW_ERROR or _field(limits, variable, "kind", "linear") == "circular"


def _turbines(conn: sa.Connection, turbines: Sequence[str] | None) -> list[str]:
    if turbines is not None:
        return list(turbines)
    return list(conn.execute(sa.text("SELECT id FROM turbine ORDER BY id")).scalars())


def _query(conn, variable, start, end, turbines, limits, qc, tail):
    quote = conn.dialect.identifier_preparer.quote
    ctes = _STATUS_CTES if qc else _PLAIN_STATUS_CTES
    params: dict[str, Any] = {"start": start, "end": end, "turbines": turbines}
    if variable == YAW_ERROR and not (YAW_ERROR in limits and qc):
        first, second = YAW_ERROR_SOURCES
        head = (
            "WITH "
            + ctes.format(column=quote(first), p="a_")
            + ","
            + ctes.format(column=quote(second), p="b_")
            + _DERIVED_STATUS_CTE
        )
        if qc:
            params |= _rule_params(limits, first, "a_") | _rule_params(limits, second, "b_")
    else:
        head = "WITH " + ctes.format(column=quote(variable), p="")
        if qc:
            params |= _rule_params(limits, variable)
    params["origin"] = -180.0 if variable == YAW_ERROR else 0.0
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
    variable to its description in ``GET /variables``: an object with (or a JSON object of)
    ``physical_min``, ``physical_max``, ``max_step``, ``kind``, ``frozen_minutes`` and
    ``frozen_exempt`` (absent: no limit, linear, 10, the bounds); default the API's
    ``KNOWN_VARIABLES``. A circular variable gets the circular statistics; ``yaw_error`` is
    computed from ``wind_direction`` and ``nacelle_position``. ``qc=False``: the plain statistics
    of every non-NULL reading, ``rejected`` 0.
    """
    limits = default_limits() if limits is None else limits
    rows: list[Row] = []
    with connect(source_url) as conn:
        turbine_ids = _turbines(conn, turbines)
        for variable in variables:
            stats = _CIRCULAR_STATS_SQL if _is_circular(limits, variable) else _STATS_SQL
            tail = _WINDOWS_SQL + stats + _RESULT_SQL
            for r in _query(conn, variable, start, end, turbine_ids, limits, qc, tail):
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
    """Every source row's status: ``(turbine_id, variable, timestamp, value, status)``, sorted.

    Status names are those of ``wind_pipeline.etl.quality.REASONS``. Absent minutes have no row.
    """
    limits = default_limits() if limits is None else limits
    rows = []
    tail = "\nSELECT turbine_id, ts, v, status FROM statuses"
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


def _differs(got: Any, want: Any, tolerance: float, angle: bool = False) -> bool:
    if got is None or want is None:
        return (got is None) != (want is None)
    if angle:  # 359.9999999999999 and 0.0 are the same direction
        return abs((got - want + 180) % 360 - 180) > tolerance
    return not math.isclose(got, want, rel_tol=tolerance, abs_tol=tolerance)


# Variables whose mean/min/max are angles, compared on the circle.
ANGLES = frozenset({"wind_direction", "nacelle_position", YAW_ERROR})


def assert_stats_equal(actual: Sequence[Row], expected: Sequence[Row], tol: float = 1e-9) -> None:
    """Same windows; mean/min/max/std to ``tol`` (relative and absolute), counts exactly.

    The mean/min/max of a direction (``ANGLES``) are compared on the circle. The first differing
    window is named with both rows, not just "lists differ".
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
            if (
                g != w
                if name in ("count", "rejected")
                else _differs(g, w, tol, angle=key[1] in ANGLES and name != "std")
            )
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
