"""The Parquet IO manager: one file per partition, a range written and read day by day, and
writes that stay atomic with several writers and a reader on the same file."""

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wind_pipeline.defs.io_managers import PartitionedParquetIOManager, StoredDays, read_table
from wind_pipeline.etl.calendar import to_utc_us

partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")
RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2024-01-01",
    "dagster/asset_partition_range_end": "2024-01-03",
}
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
US_PER_HOUR = 3_600_000_000


def hourly_table(first_day: str, days: int = 1) -> pa.Table:
    start = to_utc_us(datetime.fromisoformat(first_day))
    stamps = [start + hour * US_PER_HOUR for hour in range(24 * days)]
    return pa.table(
        {
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "value": pa.array([float(v) for v in range(len(stamps))]),
        }
    )


@dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
def upstream(context: dg.AssetExecutionContext) -> pa.Table:
    keys = context.partition_keys
    return hourly_table(keys[0], len(keys))


@dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
def downstream(context: dg.AssetExecutionContext, upstream: StoredDays):
    """Streams its input day by day into its output, as the pipeline's assets do."""
    yield dg.Output(((key, table) for key, table in upstream), metadata={"days_in": len(upstream)})


def run(
    tmp_path: Path, assets=(upstream, downstream), base: str | None = None, **kwargs
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        list(assets),
        resources={"io_manager": PartitionedParquetIOManager(base_dir=base or str(tmp_path))},
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
    stored = pq.read_table(tmp_path / "downstream" / "2024-01-02.parquet")
    assert stored.equals(hourly_table("2024-01-02"))
    assert stored.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    metadata = result.asset_materializations_for_node("upstream")[0].metadata
    assert metadata["row_count"].value == 24
    assert metadata["path"].value == str(tmp_path / "upstream" / "2024-01-02.parquet")


def test_a_range_is_split_by_day_and_streamed_downstream(tmp_path: Path) -> None:
    result = run(tmp_path, tags=RANGE_TAGS)

    assert result.success
    assert stored_files(tmp_path) == [
        f"{asset}/{day}.parquet" for asset in ("downstream", "upstream") for day in DAYS
    ]
    for offset, day in enumerate(DAYS):
        expected = hourly_table("2024-01-01", 3).slice(24 * offset, 24)
        for asset in ("upstream", "downstream"):
            assert pq.read_table(tmp_path / asset / f"{day}.parquet").equals(expected)
    materializations = result.asset_materializations_for_node("downstream")
    assert sorted(m.partition for m in materializations) == DAYS
    assert materializations[0].metadata["days_in"].value == 3
    assert materializations[0].metadata["row_count"].value == 72


def test_a_lazy_output_is_written_as_it_is_produced(tmp_path: Path) -> None:
    """Day n is computed only after day n-1 is on disk: memory holds one day, not the range."""
    on_disk_before = {}

    @dg.asset(
        partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(), name="upstream"
    )
    def lazy(context: dg.AssetExecutionContext):
        def days():
            for key in context.partition_keys:
                on_disk_before[key] = stored_files(tmp_path)
                context.add_asset_metadata({"rows": 24}, partition_key=key)
                yield key, hourly_table(key)

        yield dg.Output(days())

    result = run(tmp_path, assets=[lazy], tags=RANGE_TAGS)

    assert result.success
    assert on_disk_before == {
        "2024-01-01": [],
        "2024-01-02": ["upstream/2024-01-01.parquet"],
        "2024-01-03": ["upstream/2024-01-01.parquet", "upstream/2024-01-02.parquet"],
    }
    # Metadata recorded while the IO manager consumed the days still reaches each day's event.
    assert {
        m.partition: m.metadata["rows"].value
        for m in result.asset_materializations_for_node("upstream")
    } == dict.fromkeys(DAYS, 24)


def test_stored_days_give_a_notebook_user_a_dataframe(tmp_path: Path) -> None:
    assert run(tmp_path, tags=RANGE_TAGS).success
    paths = {day: tmp_path / "upstream" / f"{day}.parquet" for day in DAYS}

    stored = StoredDays(dg.AssetKey("upstream"), paths)

    assert [key for key, _ in stored] == DAYS
    frame = stored.to_pandas()
    assert len(frame) == 72
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert "2024-01-01..2024-01-03" in repr(stored)


def test_a_missing_partition_file_names_the_partition(tmp_path: Path) -> None:
    @dg.asset(partitions_def=partitions, deps=[], name="downstream_only")
    def reads_upstream(upstream: StoredDays) -> None:
        return None

    with pytest.raises(FileNotFoundError, match=r"upstream .*2024-01-02\.parquet"):
        run(
            tmp_path,
            assets=[upstream.to_source_asset(), reads_upstream],
            partition_key="2024-01-02",
        )


def test_rows_outside_the_partition_are_refused(tmp_path: Path) -> None:
    @dg.asset(partitions_def=partitions, name="upstream")
    def leaky(context: dg.AssetExecutionContext) -> pa.Table:
        return hourly_table("2024-01-02", 2)  # two days for a one-day partition

    with pytest.raises(ValueError, match="outside the partitions being written"):
        run(tmp_path, assets=[leaky], partition_key="2024-01-02")


WRITER = """
import sys
from pathlib import Path
import pyarrow as pa
from wind_pipeline.defs.io_managers import write_table

path, value, writes = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
table = pa.table({"value": pa.array([value] * 50_000)})
for _ in range(writes):
    write_table(table, path)
"""


def test_concurrent_writers_never_fail_and_a_reader_never_sees_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "asset" / "2024-01-01.parquet"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(value), "150"],
                         stderr=subprocess.PIPE, text=True)
        for value in (1.0, 2.0)
    ]  # fmt: skip
    reads, torn = 0, []
    deadline = time.monotonic() + 60
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        if not path.exists():
            continue
        try:
            values = read_table(path).column("value")
            if len(values) != 50_000 or len(set(values.unique().to_pylist()) - {1.0, 2.0}):
                torn.append(f"{len(values)} rows")
        except Exception as exc:  # a torn file fails to parse
            torn.append(repr(exc))
        reads += 1
    errors = [w.communicate(timeout=60)[1] for w in writers]

    assert [w.returncode for w in writers] == [0, 0], errors
    assert reads > 20  # the reader really ran beside the writers
    assert not torn, torn[:3]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_days_may_be_given_as_dates_or_keys(tmp_path: Path) -> None:
    from datetime import date

    from wind_pipeline.defs.io_managers import split_days

    days = [date(2024, 1, 1), date(2024, 1, 2)]
    split = list(split_days(hourly_table("2024-01-01", 2), days))
    assert [(day, table.num_rows) for day, table in split] == [(days[0], 24), (days[1], 24)]
    stored = StoredDays(dg.AssetKey("a"), {days[0]: tmp_path / "a.parquet"})
    assert stored.partition_keys == ["2024-01-01"]


def test_a_storage_url_of_another_scheme_is_refused() -> None:
    from wind_pipeline.defs.parquet_objects import base_path

    with pytest.raises(ValueError, match=r"gs:// is not supported; give a folder or s3://"):
        base_path("gs://bucket/prefix")
    with pytest.raises(ValueError, match="names no bucket"):
        base_path("s3://")


def test_a_file_url_is_a_folder(tmp_path: Path) -> None:
    result = run(tmp_path, partition_key="2024-01-02", base=f"file://{tmp_path}")

    assert result.success
    assert "upstream/2024-01-02.parquet" in stored_files(tmp_path)


def test_the_storage_location_defaults_to_the_stack_folder() -> None:
    from wind_pipeline.defs.io_managers import storage_location

    assert storage_location({}) == ".wind/storage"
    assert storage_location({"WIND_PIPELINE_STORAGE_DIR": "/d"}) == "/d"
    both = {"WIND_PIPELINE_STORAGE_DIR": "/d", "WIND_PIPELINE_STORAGE_URL": "s3://b/p"}
    assert storage_location(both) == "s3://b/p"
