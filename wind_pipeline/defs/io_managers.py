"""A Parquet IO manager that stores one file per daily partition and handles ranges.

Dagster's built-in file IO managers refuse to write an output that covers several partitions,
which a single-run backfill (``BackfillPolicy.single_run()``) or ``--partition-range`` produces.
This one splits such a frame by UTC day on its ``timestamp`` column and writes
``<base_dir>/<asset key>/<YYYY-MM-DD>.parquet`` per day; loading a range concatenates the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TIMESTAMP_COLUMN = "timestamp"


class PartitionedParquetIOManager(dg.ConfigurableIOManager):
    """Pandas frames as Parquet files, one per daily partition, under ``base_dir``."""

    base_dir: str

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        if not context.has_asset_partitions:
            path = self._unpartitioned_path(context.asset_key)
            _write(obj, path)
            context.add_output_metadata({"path": str(path), "row_count": len(obj)})
            return
        keys = context.asset_partition_keys
        days = _split_by_day(obj, keys, context.asset_key)
        for key in keys:
            _write(days.get(key, obj.iloc[0:0]), self._partition_path(context.asset_key, key))
        location = (
            self._partition_path(context.asset_key, keys[0])
            if len(keys) == 1
            else self._asset_dir(context.asset_key)
        )
        context.add_output_metadata(
            {"path": str(location), "row_count": len(obj), "files": len(keys)}
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        asset_key = context.asset_key
        if not context.has_asset_partitions:
            return _read([self._unpartitioned_path(asset_key)], asset_key)
        paths = [self._partition_path(asset_key, key) for key in context.asset_partition_keys]
        return _read(paths, asset_key)

    def _asset_dir(self, asset_key: dg.AssetKey) -> Path:
        return Path(self.base_dir).joinpath(*asset_key.path)

    def _partition_path(self, asset_key: dg.AssetKey, partition_key: str) -> Path:
        return self._asset_dir(asset_key) / f"{partition_key}.parquet"

    def _unpartitioned_path(self, asset_key: dg.AssetKey) -> Path:
        return self._asset_dir(asset_key).with_suffix(".parquet")


def _split_by_day(
    frame: pd.DataFrame, keys: list[str], asset_key: dg.AssetKey
) -> dict[str, pd.DataFrame]:
    """The frame's rows grouped by UTC day (``YYYY-MM-DD``); rows outside ``keys`` are a bug."""
    if frame.empty:
        return {}
    if TIMESTAMP_COLUMN not in frame.columns:
        raise ValueError(
            f"cannot store {asset_key.to_user_string()} by partition: it has no "
            f"{TIMESTAMP_COLUMN!r} column (columns: {list(frame.columns)})"
        )
    stamps = pd.DatetimeIndex(frame[TIMESTAMP_COLUMN])
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    day_labels = np.datetime_as_string(stamps.values.astype("datetime64[D]"))
    groups = {str(day): part for day, part in frame.groupby(day_labels, sort=False)}
    stray = sorted(set(groups) - set(keys))
    if stray:
        raise ValueError(
            f"{asset_key.to_user_string()} has rows on days outside the partitions being "
            f"written ({keys[0]}..{keys[-1]}): {', '.join(stray[:5])}"
        )
    return groups


def _write(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically, so a crash never leaves half a file where a good one was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), partial)
    os.replace(partial, path)


def _read(paths: list[Path], asset_key: dg.AssetKey) -> pd.DataFrame:
    missing = [path for path in paths if not path.exists()]
    if missing:
        raise FileNotFoundError(
            f"{asset_key.to_user_string()} has no stored file for {len(missing)} of the "
            f"{len(paths)} requested partitions (first missing: {missing[0]}); materialize "
            "those partitions of it first, or check WIND_PIPELINE_STORAGE_DIR"
        )
    tables = [pq.read_table(path) for path in paths]
    return pa.concat_tables(tables, promote_options="default").to_pandas()
