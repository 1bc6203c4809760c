"""The one melt from a STATS table (a row per window) to signal rows (a row per defined statistic).

The load writes these rows, the ``target_matches_stats`` check sums them and the metadata
previews them, so the three can never disagree about which values exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import arrays
from wind_pipeline.etl.signals import MIN_COUNT, STATISTICS, signal_name


def defined(statistic: str, count: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where ``statistic`` exists: enough valid readings for it, and a value (not NaN)."""
    return (count >= MIN_COUNT[statistic]) & ~np.isnan(values)


@dataclass(frozen=True)
class SignalRows:
    """The target rows of a STATS table: ``keys[key[i]]`` names row i's signal."""

    keys: list[tuple[str, str, str]]  # (turbine, variable, statistic), turbine-major
    key: np.ndarray  # int64 index into keys, per row
    micros: np.ndarray  # int64 window start, µs since the epoch (UTC)
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.key)

    def totals(self) -> dict[str, tuple[int, float]]:
        """Rows and value sum per signal name, for the signals with at least one row."""
        rows = np.bincount(self.key, minlength=len(self.keys))
        sums = np.bincount(self.key, weights=self.values, minlength=len(self.keys))
        return {
            signal_name(*self.keys[i]): (int(rows[i]), float(sums[i])) for i in np.flatnonzero(rows)
        }


def signal_keys(turbines: Sequence[str], variables: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every (turbine, variable, statistic), in the order ``melt`` numbers them."""
    return [(t, v, s) for t in turbines for v in variables for s in STATISTICS]


def melt(stats: pa.Table, turbines: Sequence[str], variables: Sequence[str]) -> SignalRows:
    """One row per defined statistic of each window of ``stats`` (a STATS table).

    Every row of ``stats`` must belong to ``turbines`` x ``variables``: a row outside them is a
    caller's bug, refused rather than dropped.
    """
    turbine = arrays.codes(stats.column("turbine_id"), turbines)
    variable = arrays.codes(stats.column("variable"), variables)
    if (turbine < 0).any() or (variable < 0).any():
        raise ValueError(
            f"statistics of turbines {arrays.names(stats.column('turbine_id'))} and variables "
            f"{arrays.names(stats.column('variable'))} outside the selection {list(turbines)} x "
            f"{list(variables)}"
        )
    base = (turbine * len(variables) + variable) * len(STATISTICS)
    micros = arrays.to_numpy(stats.column("timestamp"), np.int64)
    count = arrays.to_numpy(stats.column("count"), np.int64)
    parts = []
    for index, statistic in enumerate(STATISTICS):
        values = arrays.to_numpy(stats.column(statistic), np.float64)
        keep = defined(statistic, count, values)
        parts.append((base[keep] + index, micros[keep], values[keep]))
    key, stamps, values = (
        np.concatenate(column) if parts else np.empty(0) for column in zip(*parts, strict=True)
    )
    return SignalRows(signal_keys(turbines, variables), key, stamps, values)
