"""The source's versions: ``GET /days`` rows, parsed once, and a day's version over its turbines.

The connector API gives one row per (UTC day, turbine) with at least one reading, with an opaque
``version`` that changes whenever a reading of that (day, turbine) is inserted, updated or
deleted (README, "Late and corrected readings").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from wind_pipeline.etl.errors import TerminalError

EMPTY = "empty"  # the version of a day without any reading


@dataclass(frozen=True)
class SourceDay:
    """One row of ``GET /days``: what the source holds of one (day, turbine)."""

    day: date
    turbine: str
    readings: int
    first_timestamp: datetime
    last_timestamp: datetime
    version: str


def parse_days(body: Any) -> list[SourceDay]:
    """``GET /days``'s JSON body as ``SourceDay``s; anything else is a clear ``TerminalError``."""
    if not isinstance(body, list):
        raise _malformed("not a list")
    try:
        return [
            SourceDay(
                day=date.fromisoformat(item["day"]),
                turbine=str(item["turbine_id"]),
                readings=int(item["readings"]),
                first_timestamp=_timestamp(item["first_timestamp"]),
                last_timestamp=_timestamp(item["last_timestamp"]),
                version=str(item["version"]),
            )
            for item in body
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(f"{type(exc).__name__}: {exc}") from exc


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _malformed(problem: str) -> TerminalError:
    return TerminalError(
        f"the connector API's /days answer is malformed ({problem})",
        hint="is the connector API of this release? GET /days came with late readings",
    )


def day_version(versions: Iterable[tuple[str, str]]) -> str:
    """One version for a whole day from its (turbine, version) pairs, in any order.

    What a day's partition shows as its data version: it changes when any turbine's does, and a
    day without any reading has the version ``EMPTY``.
    """
    pairs = sorted(versions)
    if not pairs:
        return EMPTY
    text = "\n".join(f"{turbine}\t{version}" for turbine, version in pairs)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
