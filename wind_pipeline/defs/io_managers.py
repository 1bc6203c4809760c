"""A Parquet IO manager that stores Arrow tables one object per daily partition, streamed, in a
local folder or an S3 bucket.

It builds on Dagster's ``UPathIOManager`` (paths through ``universal-pathlib``, so a folder and
``s3://bucket/prefix`` are one code path: ``<base>/<asset key>/<YYYY-MM-DD>.parquet``), but
replaces its output side: ``UPathIOManager`` refuses an output that covers several partitions
(dagster issue 14332), which a single-run backfill (``BackfillPolicy.single_run()``) or
``--partition-range`` produces. Here, and without ever holding a whole range in memory:

- an asset may output a :class:`pa.Table` (split by UTC day here) or an iterable of
  ``(day, pa.Table)`` pairs (a day as a ``date`` or a partition key), written one day at a time
  *as it is consumed*: Dagster calls ``handle_output`` when the asset body yields its
  ``Output``, so an asset that yields a lazy iterable fetches or computes each day only while
  this manager writes the previous one;
- ``load_input`` hands the downstream asset a :class:`StoredDays` reader that fetches one day at
  a time (and ``to_pandas()`` for someone exploring an asset in a notebook).

Every asset here is daily-partitioned: there is no unpartitioned path. Each object is replaced
whole or not at all (see ``parquet_objects``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pyarrow as pa

from wind_pipeline.defs.parquet_objects import (
    StorageError,
    base_path,
    missing_objects,
    read_table,
    storage_location,
    write_table,
)
from wind_pipeline.etl.arrays import release_freed_memory
from wind_pipeline.etl.calendar import split_by_day

if TYPE_CHECKING:
    import pandas as pd
    from upath import UPath

__all__ = [
    "DailyParquetIOManager",
    "PartitionedParquetIOManager",
    "StorageError",
    "StoredDays",
    "read_table",
    "split_days",
    "storage_location",
    "write_table",
]

TIMESTAMP_COLUMN = "timestamp"
Day = str | date  # a partition key "YYYY-MM-DD" or the day itself
DayTables = Iterable[tuple[Day, pa.Table]]


def day_key(day: Day) -> str:
    """The partition key of a day given either way."""
    return day.isoformat() if isinstance(day, date) else day


class StoredDays:
    """The stored days of one asset, read lazily: iterate for ``(day, pa.Table)``, the day as it
    was given (a partition key or a ``date``).

    Only the day being iterated is in memory, so a downstream asset walking a year holds one
    day at a time. ``read_all()`` and ``to_pandas()`` gather every day for interactive use.
    """

    def __init__(self, asset_key: dg.AssetKey, paths: Mapping[Day, UPath | Path]) -> None:
        self.asset_key = asset_key
        self.paths = dict(paths)

    @property
    def partition_keys(self) -> list[str]:
        return [day_key(day) for day in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[tuple[Day, pa.Table]]:
        for day, path in self.paths.items():
            yield day, read_table(path)
            release_freed_memory()  # the consumer is done with the day

    def read_all(self) -> pa.Table:
        """Every day in one table (what a notebook wants; a pipeline step iterates instead)."""
        tables = [table for _, table in self]
        if not tables:
            raise ValueError(f"{self.asset_key.to_user_string()}: no partitions to read")
        return pa.concat_tables(tables, promote_options="default")

    def to_pandas(self) -> pd.DataFrame:
        return self.read_all().to_pandas()

    def __repr__(self) -> str:
        keys = self.partition_keys
        span = f"{keys[0]}..{keys[-1]}" if keys else "no days"
        return f"StoredDays({self.asset_key.to_user_string()}, {len(keys)} days: {span})"


class DailyParquetIOManager(dg.UPathIOManager):
    """The IO manager itself: Dagster's path scheme and filesystem, our streamed output side."""

    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pa.Table, path: UPath) -> None:
        write_table(obj, path)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pa.Table:
        return read_table(path)

    def make_directory(self, path: UPath) -> None:
        """Nothing to make: a folder is made by the write that needs it, S3 has none."""

    def handle_output(self, context: dg.OutputContext, obj: pa.Table | DayTables | None) -> None:
        if obj is None:
            return
        paths = self._get_paths_for_partitions(context)
        keys = list(paths)
        name = context.asset_key.to_user_string()
        if not keys:
            raise ValueError(
                f"{name}: the run names no partition of the daily partitions (a day before "
                "WIND_PIPELINE_START_DATE or after today?)"
            )
        days = split_days(obj, keys) if isinstance(obj, pa.Table) else obj
        written, rows = set(), 0
        for day, table in days:
            key = day_key(day)
            if key not in paths:
                raise ValueError(
                    f"{name} produced rows for {key}, outside the partitions being written "
                    f"({keys[0]}..{keys[-1]})"
                )
            self.dump_to_path(context, table, paths[key])
            written.add(key)
            rows += table.num_rows
            del table
            release_freed_memory()
        if len(written) != len(keys):
            missing = sorted(set(keys) - written)
            raise ValueError(
                f"{name} produced no table for {len(missing)} of its {len(keys)} partitions "
                f"(first: {missing[0]})"
            )
        location = paths[keys[0]] if len(keys) == 1 else self._get_path_without_extension(context)
        context.add_output_metadata({"path": str(location), "row_count": rows, "files": len(keys)})

    def load_input(self, context: dg.InputContext) -> StoredDays:
        paths = self._get_paths_for_partitions(context)
        missing = missing_objects(self._get_path_without_extension(context), list(paths.values()))
        if missing:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()} has no stored day for {len(missing)} of "
                f"the {len(paths)} requested partitions (first missing: {missing[0]}); "
                "materialize those partitions of it first, or check WIND_PIPELINE_STORAGE_URL "
                "(or WIND_PIPELINE_STORAGE_DIR)"
            )
        return StoredDays(context.asset_key, paths)


class PartitionedParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Arrow tables as Parquet, one object per daily partition, under ``base_dir``: a folder or
    ``s3://bucket/prefix`` (credentials from the AWS variables, read when a run starts)."""

    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> DailyParquetIOManager:
        return DailyParquetIOManager(base_path(self.base_dir))


def storage_io_manager() -> PartitionedParquetIOManager:
    """The code location's IO manager, at ``storage_location()`` (the environment's choice)."""
    return PartitionedParquetIOManager(base_dir=storage_location())


def split_days(table: pa.Table, days: list[Day]) -> Iterator[tuple[Day, pa.Table]]:
    """``(day, rows of that day)`` for every day in order (given as keys or dates, yielded as
    given), an empty table for a day without rows; lazily, so only the day being written is
    gathered beside ``table``. A row outside ``days`` comes out under its own day (as a key),
    for the caller to refuse."""
    if TIMESTAMP_COLUMN not in table.column_names:
        raise ValueError(
            f"cannot store a table by day without a {TIMESTAMP_COLUMN!r} column "
            f"(columns: {table.column_names})"
        )
    parts = split_by_day(table, TIMESTAMP_COLUMN)  # in day order, days with rows only
    pending = next(parts, None)
    for day in days:
        key = day_key(day)
        while pending is not None and pending[0].isoformat() < key:
            yield pending[0].isoformat(), pending[1]  # a stray day: handle_output refuses it
            pending = next(parts, None)
        if pending is not None and pending[0].isoformat() == key:
            yield day, pending[1]
            pending = next(parts, None)
        else:
            yield day, table.slice(0, 0)
    if pending is not None:
        yield pending[0].isoformat(), pending[1]  # a stray day: handle_output names it
