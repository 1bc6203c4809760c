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

from wind_pipeline.etl.transform import DAY_US

TIMESTAMP_COLUMN = "timestamp"


class PartitionedParquetIOManager(dg.ConfigurableIOManager):
    """Pandas frames as Parquet files, one per daily partition, under ``base_dir``."""

    base_dir: str

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        if not context.has_asset_partitions:
            path = self._unpartitioned_path(context.asset_key)
            _write(pa.Table.from_pandas(obj, preserve_index=False), path)
            context.add_output_metadata({"path": str(path), "row_count": len(obj)})
            return
        keys = context.asset_partition_keys
        table = pa.Table.from_pandas(obj, preserve_index=False)
        for key, day in zip(keys, _split_by_day(table, keys, context.asset_key), strict=True):
            _write(day, self._partition_path(context.asset_key, key))
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


def _split_by_day(table: pa.Table, keys: list[str], asset_key: dg.AssetKey) -> list[pa.Table]:
    """One zero-copy slice of ``table`` per partition key (a UTC day); stray rows are a bug."""
    if TIMESTAMP_COLUMN not in table.column_names:
        raise ValueError(
            f"cannot store {asset_key.to_user_string()} by partition: it has no "
            f"{TIMESTAMP_COLUMN!r} column (columns: {table.column_names})"
        )
    stamps = table.column(TIMESTAMP_COLUMN).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    stamps = stamps.to_numpy()
    if len(stamps) > 1 and (np.diff(stamps) < 0).any():
        order = np.argsort(stamps, kind="stable")
        table, stamps = table.take(order), stamps[order]
    starts = np.array(keys, dtype="datetime64[D]").astype("datetime64[us]").astype(np.int64)
    first = np.searchsorted(stamps, starts)
    last = np.searchsorted(stamps, starts + DAY_US)
    stray = len(stamps) - int((last - first).sum())
    if stray:
        raise ValueError(
            f"{asset_key.to_user_string()} has {stray} rows on days outside the partitions "
            f"being written ({keys[0]}..{keys[-1]})"
        )
    return [table.slice(lo, hi - lo) for lo, hi in zip(first, last, strict=True)]


def _write(table: pa.Table, path: Path) -> None:
    """Write atomically, so a crash never leaves half a file where a good one was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial)
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
