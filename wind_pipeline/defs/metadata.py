"""What a materialization records about its data: size, time span, coverage and a preview.

The UI shows these next to each partition, so a glance tells whether a day is whole.
"""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

PREVIEW_ROWS = 5


def markdown_table(frame: pd.DataFrame) -> str:
    """A small frame as a Markdown table (pandas' ``to_markdown`` needs an extra package)."""
    if frame.empty:
        return "_no rows_"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join(_cell(value) for value in row) + " |" for row in frame.itertuples(False)
    ]
    return "\n".join([header, rule, *rows])


def _cell(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.6g}"
    return str(value)


def preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame.head(rows)))


def time_span(frame: pd.DataFrame) -> dict[str, str]:
    """First and last ``timestamp`` present (empty strings for an empty frame)."""
    if frame.empty:
        return {"first_timestamp": "", "last_timestamp": ""}
    stamps = frame["timestamp"]
    return {"first_timestamp": stamps.min().isoformat(), "last_timestamp": stamps.max().isoformat()}


def percent(part: float, whole: float) -> float:
    return round(100.0 * float(part) / float(whole), 2) if whole else 0.0


def days_of(
    frame: pd.DataFrame, partition_keys: list[str]
) -> list[tuple[str, pd.DataFrame, pd.Timestamp, pd.Timestamp]]:
    """(key, rows, start, end) per daily partition; ``frame`` is sorted by ``timestamp``.

    A range run records one materialization per day; each gets its own day's figures, not the
    whole range's.
    """
    starts = pd.DatetimeIndex([pd.Timestamp(key, tz="UTC") for key in partition_keys])
    ends = starts + pd.Timedelta(days=1)
    stamps = frame["timestamp"]
    first = stamps.searchsorted(starts)
    last = stamps.searchsorted(ends)
    return [
        (key, frame.iloc[lo:hi], start, end)
        for key, lo, hi, start, end in zip(partition_keys, first, last, starts, ends, strict=True)
    ]
