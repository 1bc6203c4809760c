"""The IO manager on S3 (a local SeaweedFS) against the local folder: one 30-day range run of 10
turbines through ``dagster asset materialize``, the same command and stack for both.

Floor: the same run with ``WIND_PIPELINE_STORAGE_DIR`` (a folder), timed in the same process,
runs interleaved. Ours: ``WIND_PIPELINE_STORAGE_URL=s3://…`` on ``weed mini`` over loopback.
Each run replaces the days the previous one wrote, in both storages. Target: S3 <= 1.3x.

    .venv/bin/python benchmarks/bench_storage.py [--runs 3] [--days 30] [--turbines 10]
"""

import argparse
import secrets
import statistics
from datetime import date, timedelta

from dagster_bench_support import materialize_seconds, stack

from wind_pipeline.stack import object_store

FIRST_DAY = date(2024, 1, 1)
TARGET_RATIO = 1.3
MODULE = "wind_pipeline.definitions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per storage (default 3)")
    parser.add_argument("--days", type=int, default=30, help="partitions in the range (30)")
    parser.add_argument("--turbines", type=int, default=10, help="turbines seeded (default 10)")
    args = parser.parse_args()
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    partition_range = ["--partition-range", f"{FIRST_DAY.isoformat()}...{last_day.isoformat()}"]
    samples: dict[str, list[float]] = {"folder": [], "s3": []}
    with stack(FIRST_DAY, days=args.days, turbines=args.turbines) as s:
        store = object_store.start(s.folder / "s3", "bench", secrets.token_hex(16))
        try:
            folder_env = dict(s.env)
            s3_env = {**s.env, **store.environment("bench")}
            materialize_seconds(s, MODULE, "--partition", FIRST_DAY.isoformat())  # migrations
            for run in range(args.runs + 1):  # the first round warms both up, untimed
                for name, env in (("folder", folder_env), ("s3", s3_env)):
                    s.env = env
                    seconds = materialize_seconds(s, MODULE, *partition_range)
                    if run:
                        samples[name].append(seconds)
                    print(f"  {'warm-up' if not run else f'run {run}/{args.runs}'} {name}: "
                          f"{seconds:.2f} s", flush=True)  # fmt: skip
            objects = len(s3_filesystem(store).find(f"{store.bucket}/bench"))
        finally:
            object_store.stop(store)
    folder, s3 = (statistics.median(samples[name]) for name in ("folder", "s3"))
    print(f"\n{args.days} days x {args.turbines} turbines in one run, median of {args.runs}:")
    print(f"  floor: local folder                 {folder:7.2f} s")
    print(f"  S3 (SeaweedFS on loopback)          {s3:7.2f} s  {s3 / folder:4.2f}x the floor")
    print(f"  objects in the bucket: {objects} (2 stored assets x {args.days} days)")
    per_object = 1000 * (s3 - folder) / (2 * args.days)
    print(f"  S3's extra per object written and read back: {per_object:.1f} ms")
    verdict = "meets" if s3 / folder <= TARGET_RATIO else "MISSES"
    print(f"ratio {s3 / folder:.2f} {verdict} the target <= {TARGET_RATIO}x")


def s3_filesystem(store: object_store.ObjectStore):
    import s3fs

    return s3fs.S3FileSystem(
        key=store.access_key,
        secret=store.secret_key,
        client_kwargs={"endpoint_url": store.endpoint_url, "region_name": "us-east-1"},
        skip_instance_cache=True,
    )


if __name__ == "__main__":
    main()
