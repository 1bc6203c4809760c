"""The IO manager on a real S3 server (SeaweedFS, the session's ``s3_server``): one object per
asset and day, the pipeline's target equal to the SQL reference, whole-object replaces under a
concurrent reader, and one clear message when the store refuses or cannot be reached."""

import subprocess
import sys
import time

import dagster as dg
import pyarrow as pa
import pytest

from wind_pipeline.defs.assets import raw_readings, signal_data, ten_minute_stats
from wind_pipeline.defs.io_managers import PartitionedParquetIOManager, storage_location
from wind_pipeline.defs.parquet_objects import base_path, read_table
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.dagster_support import range_tags, resources
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)
from wind_pipeline_tests.seaweed import fresh_prefix, listed, s3_filesystem
from wind_pipeline_tests.test_io_manager import (
    DAYS,
    RANGE_TAGS,
    downstream,
    hourly_table,
    upstream,
)

ASSETS = [raw_readings, ten_minute_stats, signal_data]
ASSET_NAMES = ("raw_readings", "signal_data", "ten_minute_stats")


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> dict[str, str]:
    """The test's environment pointed at a fresh prefix of the server's bucket."""
    env = s3_server.environment(fresh_prefix())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """What the run's step failure says: the user's description, else the error's message."""
    (event,) = result.get_step_failure_events()
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error.cause is not None and "Error occurred while" in error.message:
        error = error.cause
    return error.message


def toy_run(**kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [upstream, downstream],
        resources={"io_manager": PartitionedParquetIOManager(base_dir=storage_location())},
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


def test_the_storage_url_wins_over_the_folder(s3_env, monkeypatch) -> None:
    monkeypatch.setenv("WIND_PIPELINE_STORAGE_DIR", "/somewhere/else")
    assert storage_location() == s3_env["WIND_PIPELINE_STORAGE_URL"]
    monkeypatch.delenv("WIND_PIPELINE_STORAGE_URL")
    assert storage_location() == "/somewhere/else"


def test_a_range_is_one_object_per_asset_and_day(s3_server, s3_env) -> None:
    result = toy_run(tags=RANGE_TAGS)

    assert result.success
    prefix = s3_env["WIND_PIPELINE_STORAGE_URL"].split("/", 3)[3]
    assert listed(s3_server, prefix) == [
        f"{asset}/{day}.parquet" for asset in ("downstream", "upstream") for day in DAYS
    ]
    root = base_path(storage_location())
    for offset, day in enumerate(DAYS):
        expected = hourly_table("2024-01-01", 3).slice(24 * offset, 24)
        assert read_table(root / "downstream" / f"{day}.parquet").equals(expected)
    (first, *_) = result.asset_materializations_for_node("upstream")
    assert first.metadata["path"].value == f"{s3_env['WIND_PIPELINE_STORAGE_URL']}/upstream"
    assert first.metadata["row_count"].value == 72


def test_pipeline_range_and_partition_on_s3_equal_the_sql_reference(
    s3_server, s3_env, seed_source, serve_api, source_url, target_url
) -> None:
    seed_source(days=4, turbines=2, faults=True)
    api_url = serve_api()
    url = s3_env["WIND_PIPELINE_STORAGE_URL"]
    instance = dg.DagsterInstance.ephemeral()

    def run(**kwargs) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS, resources=resources(api_url, target_url, url), instance=instance, **kwargs
        )

    ranged = run(tags=range_tags("2024-01-01", "2024-01-03"))
    single = run(partition_key="2024-01-04")

    assert ranged.success and single.success
    days = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    prefix = url.split("/", 3)[3]
    assert listed(s3_server, prefix) == [
        f"{asset}/{day}.parquet" for asset in ("raw_readings", "ten_minute_stats") for day in days
    ]
    start, _ = day_bounds(DAY)
    _, end = day_bounds(DAY.replace(day=4))
    assert_stats_equal(
        target_stats(target_url, start, end), reference_stats(source_url, start, end)
    )
    assert (
        sorted(m.partition for m in ranged.asset_materializations_for_node("signal_data"))
        == (days[:3])
    )


WRITER = """
import sys
import pyarrow as pa
from wind_pipeline.defs.parquet_objects import base_path, write_table

path, value, writes = base_path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
table = pa.table({"value": pa.array([value] * 200_000)})
for _ in range(writes):
    write_table(table, path)
"""


def test_a_reader_never_sees_a_torn_object_while_it_is_rewritten(s3_env) -> None:
    url = f"{s3_env['WIND_PIPELINE_STORAGE_URL']}/asset/2024-01-01.parquet"
    path = base_path(url)
    first = pa.table({"value": pa.array([0.0] * 200_000)})
    from wind_pipeline.defs.parquet_objects import write_table

    write_table(first, path)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, str(value), "40"],
                         stderr=subprocess.PIPE, text=True)
        for value in (1.0, 2.0)
    ]  # fmt: skip
    reads, torn, seen = 0, [], set()
    deadline = time.monotonic() + 90
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        try:
            values = read_table(path).column("value")
            found = set(values.unique().to_pylist())
            seen |= found
            if len(values) != 200_000 or len(found) != 1:
                torn.append(f"{len(values)} rows, values {sorted(found)[:3]}")
        except Exception as exc:  # a torn object fails to parse
            torn.append(repr(exc))
        reads += 1
    errors = [w.communicate(timeout=60)[1] for w in writers]

    assert [w.returncode for w in writers] == [0, 0], errors
    assert reads > 10  # the reader really ran beside the writers
    assert not torn, torn[:3]
    assert seen & {1.0, 2.0}  # it saw the rewrites, not only the first version


def test_the_server_refuses_a_wrong_secret(s3_server) -> None:
    with pytest.raises(PermissionError):
        s3_filesystem(s3_server, secret="not-the-secret").ls(s3_server.bucket)


def test_wrong_credentials_fail_the_run_once_with_one_clear_message(
    s3_env, monkeypatch, seed_source, serve_api, target_url
) -> None:
    seed_source(days=1, turbines=1)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    started = time.monotonic()

    result = dg.materialize(
        ASSETS,
        resources=resources(serve_api(), target_url, s3_env["WIND_PIPELINE_STORAGE_URL"]),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="2024-01-01",
        raise_on_error=False,
    )

    assert not result.success
    text = failure_text(result)
    assert "refused access" in text and "AWS_SECRET_ACCESS_KEY" in text
    assert "signature" in text.lower()  # the server's own reason
    assert "\n" not in text.strip()
    assert time.monotonic() - started < 60  # no retries of what retrying cannot fix


def test_a_missing_bucket_is_named(s3_server, monkeypatch) -> None:
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WIND_PIPELINE_STORAGE_URL", "s3://no-such-bucket/prefix")

    result = toy_run(partition_key="2024-01-02", raise_on_error=False)

    assert not result.success
    assert failure_text(result).startswith("the bucket 'no-such-bucket' does not exist on http")


def test_an_unreachable_endpoint_fails_the_run_with_one_clear_message(s3_env, monkeypatch) -> None:
    import socket

    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")

    result = toy_run(partition_key="2024-01-02", raise_on_error=False)

    assert not result.success
    text = failure_text(result)
    assert "StorageError: cannot reach the object store" in text
    assert "AWS_ENDPOINT_URL" in text
    assert len(text.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_long_range_on_s3_stays_within_a_quarter_of_its_data_above_a_short_one(
    s3_server, seed_source, serve_api, make_database, target_url, tmp_path
) -> None:
    """The bound of test_dagster_memory with the days in S3: a day is encoded in memory before
    its PUT and fetched whole by one GET, still one day at a time."""
    from wind_pipeline_tests.dagster_support import (
        dagster_home,
        materialize_measuring_memory,
        run_config_args,
    )
    from wind_pipeline_tests.test_dagster_memory import DAYS, MB, TURBINES, VARIABLES

    seed_source(days=DAYS, turbines=TURBINES)
    prefix = fresh_prefix()
    env = {
        **dagster_home(tmp_path, make_database()),
        **s3_server.environment(prefix),
        "CONNECTOR_API_URL": serve_api(),
        "TARGET_DATABASE_URL": target_url,
        "WIND_PIPELINE_START_DATE": "2024-01-01",
    }

    def run(days: int) -> int:
        raw = {"variables": VARIABLES, "block_readings": 1440 * TURBINES}
        config = run_config_args({"ops": {"raw_readings": {"config": raw}}})
        span = ["--partition-range", f"2024-01-01...2024-01-{days:02d}"]
        measured = materialize_measuring_memory(env, *span, *config)
        assert measured.returncode == 0, measured.stderr[-3000:]
        return measured.peak_rss

    # The higher of two short runs: identical runs' peaks differ by up to ~8 MB (when the
    # allocators hand pages back), and one low baseline would fail a long run on noise alone.
    short = max(run(2), run(2))
    long = run(DAYS)
    root = base_path(f"s3://{s3_server.bucket}/{prefix}", env)
    objects = listed(s3_server, prefix)
    allowance = sum(read_table(root / name).nbytes for name in objects) // 4

    print(f"S3 peak RSS: 2 days {short / MB:.1f} MB, {DAYS} days {long / MB:.1f} MB; ")
    assert len(objects) == 2 * DAYS
    assert allowance > 5 * MB
    assert long <= short + allowance, (long - short) / MB
