"""What a materialization records about its day: size, coverage, quality shares and a preview.

The UI shows these next to each partition, and plots every plain number over the partitions, so
the shares that matter (coverage, rejected percent per variable and per reason) are top-level
numbers, not buried in a dict. Everything here runs once per day of a range run (365 times for a
year), so it works on Arrow tables and small Python lists, never a DataFrame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa

from wind_pipeline.etl.arrays import to_numpy
from wind_pipeline.etl.audit import QualityCounts, window_fill
from wind_pipeline.etl.calendar import MINUTES_PER_DAY, from_utc_us
from wind_pipeline.etl.pipeline import Selection
from wind_pipeline.etl.quality import MISSING
from wind_pipeline.etl.signal_rows import melt
from wind_pipeline.etl.signals import STATISTICS, signal_name

PREVIEW_ROWS = 5


def percent(part: float, whole: float) -> float:
    return round(100.0 * float(part) / float(whole), 2) if whole else 0.0


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A few rows as a Markdown table (the UI renders it; no extra package needed)."""
    if not rows:
        return "_no rows_"
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def plain_rows(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()``, with timestamps converted here: pyarrow's own conversion of a
    timestamp imports pandas (about 0.5 s of a one-partition run, measured)."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_timestamp(column.type):
            micros = to_numpy(column.cast(pa.timestamp("us", tz="UTC")), np.int64)
            columns[name] = [from_utc_us(value) for value in micros]
        else:
            columns[name] = column.to_pylist()
    rows = zip(*columns.values(), strict=True)
    return [dict(zip(columns, values, strict=True)) for values in rows]


def preview(table: pa.Table, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    """The first rows of ``table`` as Markdown."""
    head = plain_rows(table.slice(0, rows))
    return dg.MetadataValue.md(
        markdown_table(table.column_names, [list(row.values()) for row in head])
    )


def records_preview(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(columns, rows[:PREVIEW_ROWS]))


def time_span(table: pa.Table, column: str = "timestamp") -> dict[str, str]:
    """First and last ``timestamp`` present (empty strings for an empty table)."""
    if table.num_rows == 0:
        return {"first_timestamp": "", "last_timestamp": ""}
    micros = to_numpy(table.column(column), np.int64)
    return {
        "first_timestamp": from_utc_us(micros.min()).isoformat(),
        "last_timestamp": from_utc_us(micros.max()).isoformat(),
    }


def per_turbine_table(
    columns: Mapping[str, str], rows: Sequence[Mapping[str, Any]]
) -> dg.MetadataValue:
    """One row per turbine as Dagster table metadata (sortable in the UI)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()])
    return dg.MetadataValue.table(records=[dg.TableRecord(row) for row in rows], schema=schema)


def raw_metadata(day: pa.Table, turbines: int) -> dict:
    """One day's readings: how many, how complete, a preview."""
    expected = MINUTES_PER_DAY * turbines
    variables = [name for name in day.column_names if name not in ("turbine_id", "timestamp")]
    return {
        "row_count": day.num_rows,
        "expected_rows": expected,
        "turbines": turbines,
        "coverage_percent": percent(day.num_rows, expected),
        "non_null_percent": {
            name: percent(day.num_rows - day.column(name).null_count, expected)
            for name in variables
        },
        **time_span(day),
        "preview": preview(day),
    }


PER_TURBINE_COLUMNS = {
    "turbine": "string",
    "coverage_percent": "float",
    "rejected_percent": "float",
    "rejected": "int",
}


def stats_metadata(stats: pa.Table, q: QualityCounts, qc: bool) -> dict:
    """One day's windows and QC shares, as top-level numbers the UI plots over partitions."""
    rejected, present = q.rejected, q.present
    shares = {
        f"rejected_percent_{variable}": percent(rejected[:, i].sum(), present[:, i].sum())
        for i, variable in enumerate(q.variables)
    }
    reasons = {
        f"rejected_percent_{reason}": percent(n, present.sum())
        for reason, n in q.by_reason().items()
    }
    expected = MINUTES_PER_DAY * len(q.variables)
    missing = q.counts[:, :, MISSING]
    turbines = [
        {
            "turbine": turbine,
            "coverage_percent": percent(expected - missing[i].sum(), expected),
            "rejected_percent": percent(rejected[i].sum(), present[i].sum()),
            "rejected": int(rejected[i].sum()),
        }
        for i, turbine in enumerate(q.turbines)
    ]
    with_data, full = window_fill(stats)
    return {
        "row_count": stats.num_rows,
        "quality_control": qc,
        "rejected_percent": percent(rejected.sum(), present.sum()),
        **shares,
        **reasons,
        "windows_with_data_percent": percent(with_data, stats.num_rows),
        "full_windows_percent": percent(full, stats.num_rows),
        "per_turbine": per_turbine_table(PER_TURBINE_COLUMNS, turbines),
        "preview": preview(stats),
    }


def signal_metadata(stats: pa.Table, selection: Selection, rows_written: int) -> dict:
    """One day in the target: rows written, and a preview of them as stored (signal, value)."""
    first = melt(stats.slice(0, 1), selection.turbines, selection.variables)
    stored = [
        (signal_name(*first.keys[key]), from_utc_us(int(micros)), float(value))
        for key, micros, value in zip(first.key, first.micros, first.values, strict=True)
    ]
    return {
        "rows_written": rows_written,
        "defined_values_percent": percent(rows_written, stats.num_rows * len(STATISTICS)),
        **time_span(stats),
        "preview": records_preview(["signal", "timestamp", "value"], stored),
    }
