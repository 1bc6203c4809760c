"""The Parquet IO manager: one file per partition, a range split by day and read back whole."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pandas.testing as pdt
import pytest

from wind_pipeline.defs.io_managers import PartitionedParquetIOManager

partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")
RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2024-01-01",
    "dagster/asset_partition_range_end": "2024-01-03",
}


def hourly_frame(start: str, end: str) -> pd.DataFrame:
    stamps = pd.date_range(start, end, freq="1h", inclusive="left", tz="UTC", unit="us")
    return pd.DataFrame({"timestamp": stamps, "value": range(len(stamps))}, dtype=None)


@dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
def upstream(context: dg.AssetExecutionContext) -> pd.DataFrame:
    window = context.partition_time_window
    return hourly_frame(window.start.isoformat(), window.end.isoformat())


@dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
def downstream(context: dg.AssetExecutionContext, upstream: pd.DataFrame) -> pd.DataFrame:
    context.add_output_metadata({"rows_in": len(upstream)})
    return upstream


def run(tmp_path: Path, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [upstream, downstream],
        resources={"io_manager": PartitionedParquetIOManager(base_dir=str(tmp_path))},
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


def stored_files(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())


def test_one_partition_round_trips_to_its_own_file(tmp_path: Path) -> None:
    result = run(tmp_path, partition_key="2024-01-02")

    assert result.success
    assert stored_files(tmp_path) == [
        "downstream/2024-01-02.parquet",
        "upstream/2024-01-02.parquet",
    ]
    stored = pd.read_parquet(tmp_path / "downstream" / "2024-01-02.parquet")
    pdt.assert_frame_equal(stored, hourly_frame("2024-01-02", "2024-01-03"))
    metadata = result.asset_materializations_for_node("upstream")[0].metadata
    assert metadata["row_count"].value == 24
    assert metadata["path"].value == str(tmp_path / "upstream" / "2024-01-02.parquet")


def test_a_range_is_split_by_day_and_loaded_back_whole(tmp_path: Path) -> None:
    result = run(tmp_path, tags=RANGE_TAGS)

    assert result.success
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert stored_files(tmp_path) == [
        f"{asset}/{day}.parquet" for asset in ("downstream", "upstream") for day in days
    ]
    whole = hourly_frame("2024-01-01", "2024-01-04")
    for offset, day in enumerate(days):
        stored = pd.read_parquet(tmp_path / "upstream" / f"{day}.parquet")
        expected = whole.iloc[24 * offset : 24 * (offset + 1)].reset_index(drop=True)
        pdt.assert_frame_equal(stored, expected)
    materializations = result.asset_materializations_for_node("downstream")
    assert sorted(m.partition for m in materializations) == days
    assert materializations[0].metadata["rows_in"].value == 72  # the whole range in one load


def test_a_missing_partition_file_names_the_partition(tmp_path: Path) -> None:
    @dg.asset(partitions_def=partitions, deps=[], name="downstream_only")
    def reads_upstream(upstream: pd.DataFrame) -> pd.DataFrame:
        return upstream

    with pytest.raises(FileNotFoundError, match=r"upstream .*2024-01-02\.parquet"):
        dg.materialize(
            [upstream.to_source_asset(), reads_upstream],
            partition_key="2024-01-02",
            resources={"io_manager": PartitionedParquetIOManager(base_dir=str(tmp_path))},
            instance=dg.DagsterInstance.ephemeral(),
        )


def test_rows_outside_the_partition_are_refused(tmp_path: Path) -> None:
    @dg.asset(partitions_def=partitions, name="upstream")
    def leaky(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return hourly_frame("2024-01-02", "2024-01-04")  # two days for a one-day partition

    with pytest.raises(ValueError, match="outside the partitions being written"):
        dg.materialize(
            [leaky],
            partition_key="2024-01-02",
            resources={"io_manager": PartitionedParquetIOManager(base_dir=str(tmp_path))},
            instance=dg.DagsterInstance.ephemeral(),
        )
