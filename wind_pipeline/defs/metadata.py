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
import pyarrow as pa
import pyarrow.compute as pc

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


def preview(table: pa.Table, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    """The first rows of ``table`` as Markdown."""
    head = table.slice(0, rows).to_pylist()
    return dg.MetadataValue.md(
        markdown_table(table.column_names, [list(row.values()) for row in head])
    )


def records_preview(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(columns, rows[:PREVIEW_ROWS]))


def time_span(table: pa.Table, column: str = "timestamp") -> dict[str, str]:
    """First and last ``timestamp`` present (empty strings for an empty table)."""
    if table.num_rows == 0:
        return {"first_timestamp": "", "last_timestamp": ""}
    low, high = pc.min_max(table.column(column)).values()
    return {"first_timestamp": low.as_py().isoformat(), "last_timestamp": high.as_py().isoformat()}


def per_turbine_table(
    columns: Mapping[str, str], rows: Sequence[Mapping[str, Any]]
) -> dg.MetadataValue:
    """One row per turbine as Dagster table metadata (sortable in the UI)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()])
    return dg.MetadataValue.table(records=[dg.TableRecord(row) for row in rows], schema=schema)
