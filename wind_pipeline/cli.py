"""``wind-etl``: load days of ten-minute statistics from the connector API into the target.

Imports stay lazy: ``--help`` and argument errors answer before numpy, pyarrow or httpx load.
The exit codes live here, one per error class of the core (``EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from wind_pipeline import localenv
from wind_pipeline.etl import signals
from wind_pipeline.etl.errors import (
    ApiRejectedError,
    ApiUnavailableError,
    DatabaseError,
    InvalidInputError,
    NoSourceDataError,
    PipelineError,
    StackNotRunningError,
    TargetUnavailableError,
    TerminalError,
    TransientError,
)
from wind_pipeline.etl.retries import API_RETRIES

if TYPE_CHECKING:
    from wind_pipeline.etl.db import DirectDatabase
    from wind_pipeline.etl.pipeline import DayReport

T = TypeVar("T")

PROG = "wind-etl"

API_URL_ENV = "CONNECTOR_API_URL"
API_KEY_ENV = "CONNECTOR_API_KEY"
DATABASE_URL_ENV = localenv.TARGET_ENV  # named once, in localenv
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@localhost:5432/target"
DEFAULT_VARIABLES = ",".join(signals.DEFAULT_VARIABLES)
DEFAULT_RETRIES = API_RETRIES  # of an API call and of a day's load alike

# Most specific first: the first class an error is an instance of gives its code.
EXIT_CODES: tuple[tuple[type[PipelineError], int, str], ...] = (
    (InvalidInputError, 2, "bad input (date, range, variable, turbine, URL or option)"),
    (ApiUnavailableError, 3, "connector API unreachable or failing (5xx) after the retries"),
    (ApiRejectedError, 4, "connector API rejected the request (4xx, e.g. a wrong API key)"),
    (DatabaseError, 5, "target database refused a statement"),
    (NoSourceDataError, 6, "a day without any source reading (see --allow-empty)"),
    (TargetUnavailableError, 7, "target database unreachable or dropped after the retries"),
    (StackNotRunningError, 10, "no target: the local stack is not running (see make run)"),
    (TerminalError, 8, "another terminal error (e.g. the API answered something unreadable)"),
    (TransientError, 9, "another transient error that outlasted the retries"),
)
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 1  # a bug: the traceback is printed, please report it

USAGE = f"""{PROG} DATE [--end DATE] [--variables a,b|all] [--turbines WTG01,WTG02] [--qc on|off]
                [--allow-empty] [--api-url URL] [--api-key KEY] [--database-url URL]
                [--retries N]
       {PROG} sync [--since DAYS | DATE --end DATE] [--turbines …] [--dry-run]   (see sync --help)
       {PROG} init-db [--database-url URL]
       {PROG} prune --before YYYY-MM [--dry-run] [--database-url URL]"""
DESCRIPTION = """\
Load ten-minute statistics of the days DATE..END (inclusive, UTC) from the connector API into
the target database, one transaction per day and turbine set; a re-run replaces a day's rows of
the turbines it loads, never duplicates them, and never touches other turbines' rows.
`init-db` creates or upgrades the target schema (Alembic; idempotent); a load does it too."""
_CODES = "\n".join(f"  {code:>3}  {text}" for _, code, text in EXIT_CODES)
EPILOG = f"""\
examples:
  {PROG} 2024-01-01
  {PROG} 2024-01-01 --end 2024-01-31 --variables wind_speed,power,ambient_temperature
  {PROG} 2024-01-01 --turbines WTG01,WTG02 --qc off
  {PROG} 2024-01-01 --variables all
  {PROG} init-db --database-url postgresql://postgres@localhost:5432/target

environment: {API_URL_ENV} (default {DEFAULT_API_URL}), {API_KEY_ENV}, {DATABASE_URL_ENV};
typed in the folder where `make run` runs, all three come from the stack's ./.env (an exported
variable wins); with neither a stack nor {DATABASE_URL_ENV}, it says how to start one.

exit codes:
    0  ok
{_CODES}
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); the days reported are loaded
    {EXIT_INTERNAL}  internal error (a bug; a traceback is printed)"""
PROGRESS_MIN_DAYS = 8  # shorter ranges are quick enough to need no progress lines
INTERRUPT_GRACE_SECONDS = 2.0  # after Ctrl-C, how long the cancelled day may take to roll back


def api_url() -> str:
    """The connector API's base URL from ``CONNECTOR_API_URL``, or the local default."""
    return os.environ.get(API_URL_ENV) or DEFAULT_API_URL


def api_key() -> str | None:
    """The API key from ``CONNECTOR_API_KEY``; unset or empty means no key."""
    return os.environ.get(API_KEY_ENV) or None


def database_url() -> str:
    """The target database URL from ``TARGET_DATABASE_URL``, or the local default."""
    return os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def exit_code(exc: PipelineError) -> int:
    """The code of the first class in ``EXIT_CODES`` that ``exc`` is an instance of."""
    return next(code for kind, code, _ in EXIT_CODES if isinstance(exc, kind))


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line, like every other wind-etl error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=database_url(),
        metavar="URL",
        help=f"target PostgreSQL (default: ${DATABASE_URL_ENV} or the local default)",
    )


def run_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage=USAGE,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("date", metavar="DATE", help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--end", metavar="DATE", help="last day, inclusive (default: DATE)")
    parser.add_argument(
        "--variables",
        default=DEFAULT_VARIABLES,
        metavar="a,b",
        help="comma-separated variables (GET /variables lists them; yaw_error is derived from "
        "wind_direction and nacelle_position), or `all` for every one of them "
        f"(default: {DEFAULT_VARIABLES})",
    )
    parser.add_argument(
        "--turbines",
        metavar="WTG01,WTG02",
        help="comma-separated turbine ids (default: every turbine of the source)",
    )
    parser.add_argument(
        "--qc",
        choices=("on", "off"),
        default="on",
        help="quality control (README, Data quality); off: every non-NULL reading counts, "
        "rejected = 0",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="load a day without source data (all counts 0) instead of failing",
    )
    parser.add_argument(
        "--api-url",
        default=api_url(),
        metavar="URL",
        help=f"connector API (default: ${API_URL_ENV} or {DEFAULT_API_URL})",
    )
    parser.add_argument(
        "--api-key", default=api_key(), metavar="KEY", help=f"default: ${API_KEY_ENV}"
    )
    _database_option(parser)
    parser.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        metavar="N",
        help="retries, with exponential backoff, of a failed API call and of a day whose "
        f"target connection dropped (default: {DEFAULT_RETRIES})",
    )
    return parser


def init_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} init-db",
        description="Create or upgrade the target schema (signal, data) with Alembic; "
        "safe to repeat. A target created by the previous release keeps every row and id.",
    )
    _database_option(parser)
    return parser


def prune_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} prune",
        description="Drop the target's whole months before --before (their partitions of the "
        "data table, detached and dropped in one transaction) and say what went.",
    )
    parser.add_argument("--before", required=True, metavar="YYYY-MM", help="first month kept")
    parser.add_argument("--dry-run", action="store_true", help="say what would go; drop nothing")
    _database_option(parser)
    return parser


def prune(args: argparse.Namespace) -> int:
    from wind_pipeline.etl import retention
    from wind_pipeline.etl.db import DirectDatabase, connect

    before = retention.parse_month(args.before)
    conn = connect(DirectDatabase(args.database_url))
    try:
        pruned = retention.prune(conn, before, dry_run=args.dry_run)
    finally:
        conn.close()
    print("\n".join(retention.report(pruned, before, dry_run=args.dry_run)))
    return 0


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"malformed date {text!r} for {option}: expected YYYY-MM-DD"
        ) from None


def init_db(args: argparse.Namespace) -> int:
    from wind_pipeline.etl.db import create_engine
    from wind_pipeline.etl.schema import upgrade_schema

    engine = create_engine(args.database_url)
    try:
        done = upgrade_schema(engine)
    finally:
        engine.dispose()
    state = "was already" if done == "current" else f"{done},"
    print(f"target schema {state} at the head revision")
    return 0


def ensure_schema(url: str, database) -> None:
    """Upgrade the schema unless it is at head; only then are SQLAlchemy and Alembic imported."""
    from wind_pipeline.etl.db import HEAD_REVISION, schema_version

    if schema_version(database) != HEAD_REVISION:
        from wind_pipeline.etl.db import create_engine
        from wind_pipeline.etl.schema import upgrade_schema

        engine = create_engine(url)
        try:
            upgrade_schema(engine)
        finally:
            engine.dispose()


def run(args: argparse.Namespace) -> int:
    first = parse_day(args.date, "DATE")
    last = parse_day(args.end, "--end") if args.end else first
    if last < first:
        raise InvalidInputError(f"--end {last} is before DATE {first}")
    if args.retries < 0:
        raise InvalidInputError(f"--retries must be 0 or more, not {args.retries}")

    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import DirectDatabase
    from wind_pipeline.etl.reload import run_recorded
    from wind_pipeline.etl.retries import retrying

    days = (last - first).days + 1
    began = time.perf_counter()
    with ConnectorClient(args.api_url, args.api_key, retries=args.retries) as client:
        database = DirectDatabase(args.database_url)
        try:
            # Before the first fetch, so a wrong URL fails before any work; retried like a load.
            retrying(lambda: ensure_schema(args.database_url, database), args.retries)
            if days >= PROGRESS_MIN_DAYS:
                print(f"{PROG}: loading {days} days from {args.api_url} …", file=sys.stderr)
            reports = interruptible(
                lambda: run_recorded(  # run_range, writing each day's loaded_day records
                    client,
                    database,
                    first,
                    last,
                    variables=args.variables,
                    turbines=args.turbines,
                    qc=args.qc == "on",
                    allow_empty=args.allow_empty,
                    on_day=Progress(days),
                    target_retries=args.retries,
                ),
                database,
            )
        finally:
            database.dispose()
    if days > 1:
        read = sum(r.rows_read for r in reports)
        written = sum(r.rows_written for r in reports)
        seconds = time.perf_counter() - began
        say(f"total: {days} days, read {read} rows, wrote {written} rows in {seconds:.2f} s")
    return 0


def interruptible(work: Callable[[], T], database: DirectDatabase) -> T:
    """``work()`` in a worker thread, so that Ctrl-C is heard while a query blocks.

    psycopg2 waits for the server in C and would hold the interrupt until it answers (a day
    waiting on the lock of a Dagster run loading it: as long as that run). Here the main thread
    hears it, asks the server to cancel (the day rolls back, days already loaded stay) and
    re-raises it.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the main thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=PROG, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:
        database.cancel()
        thread.join(INTERRUPT_GRACE_SECONDS)  # a stalled HTTP read is left to the process exit
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def say(line: str) -> None:
    """A line on stdout; once its reader hangs up (``| head``), the rest go nowhere and the
    days asked for are still loaded: output piped away must not stop the work half way."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class Progress:
    """Each day's summary on stdout as it lands; for long ranges a count every tenth on stderr."""

    def __init__(self, days: int) -> None:
        self.days, self.done = days, 0
        self.every = max(1, days // 10) if days >= PROGRESS_MIN_DAYS else 0

    def __call__(self, report: DayReport) -> None:
        self.done += 1
        say(report.summary())
        if self.every and (self.done % self.every == 0 or self.done == self.days):
            print(f"{PROG}: loaded {self.done}/{self.days} days", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        localenv.apply(argv)  # a local stack's ./.env fills what the shell does not set, as dagster
        if argv[:1] == ["init-db"]:
            return init_db(init_parser().parse_args(argv[1:]))
        if argv[:1] == ["prune"]:
            return prune(prune_parser().parse_args(argv[1:]))
        if argv[:1] == ["sync"]:
            from wind_pipeline.cli_sync import run_sync, sync_parser

            return run_sync(sync_parser().parse_args(argv[1:]))
        return run(run_parser().parse_args(argv))
    except PipelineError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        _alert(argv, exc)
        return exit_code(exc)
    except KeyboardInterrupt:
        message = "interrupted: the days reported above are loaded; re-run the range for the rest"
        print(f"{PROG}: {message}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: alerted, then the traceback as before
        _alert(argv, exc)
        raise


def _alert(argv: list[str], exc: Exception) -> None:
    """One webhook alert per failed load or sync (README, "Late and corrected readings")."""
    if argv[:1] in (["init-db"], ["prune"]) or isinstance(exc, InvalidInputError):
        return
    from wind_pipeline.etl.alerts import alert_command_failure

    alert_command_failure(argv, f"{type(exc).__name__}: {exc}", prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
