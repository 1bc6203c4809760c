"""``wind-etl``: load days of ten-minute statistics from the connector API into the target.

Imports stay lazy: ``--help`` and argument errors answer before numpy, pyarrow or httpx load,
and a normal run never imports pandas or SQLAlchemy (the fast paths in ``etl``).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from typing import TYPE_CHECKING, NoReturn

from wind_pipeline.etl import config
from wind_pipeline.etl.errors import InvalidInputError, PipelineError

if TYPE_CHECKING:
    from wind_pipeline.etl.db import DirectDatabase
    from wind_pipeline.etl.pipeline import DayReport

PROG = "wind-etl"
USAGE = f"""{PROG} DATE [--end DATE] [--variables a,b] [--allow-empty] [--api-url URL]
                [--api-key KEY] [--database-url URL] [--retries N]
       {PROG} init-db [--database-url URL]"""
DESCRIPTION = """\
Load ten-minute statistics of the days DATE..END (inclusive, UTC) from the connector API into
the target database, one transaction per day; a re-run replaces a day, never duplicates it.
`init-db` creates or upgrades the target schema (idempotent); a load creates it too if missing."""
EPILOG = f"""\
examples:
  {PROG} 2024-01-01
  {PROG} 2024-01-01 --end 2024-01-31 --variables wind_speed,power,ambient_temperature
  {PROG} init-db --database-url postgresql://postgres@localhost:5432/target

environment: {config.API_URL_ENV} (default {config.DEFAULT_API_URL}), {config.API_KEY_ENV},
{config.DATABASE_URL_ENV} (default {config.DEFAULT_DATABASE_URL}).
exit codes: 0 ok, 2 bad input, 3 API unavailable, 4 API rejected the request, 5 database error,
6 a day without source data."""
PROGRESS_MIN_DAYS = 8  # shorter ranges are quick enough to need no progress lines


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line, like every other wind-etl error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=config.database_url(),
        metavar="URL",
        help=f"target PostgreSQL (default: ${config.DATABASE_URL_ENV} or the local default)",
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
        default=",".join(config.DEFAULT_VARIABLES),
        metavar="a,b",
        help=f"comma-separated source variables (default: {','.join(config.DEFAULT_VARIABLES)})",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="load a day without source data (all counts 0) instead of failing",
    )
    parser.add_argument(
        "--api-url",
        default=config.api_url(),
        metavar="URL",
        help=f"connector API (default: ${config.API_URL_ENV} or {config.DEFAULT_API_URL})",
    )
    parser.add_argument(
        "--api-key", default=config.api_key(), metavar="KEY", help=f"default: ${config.API_KEY_ENV}"
    )
    _database_option(parser)
    parser.add_argument(
        "--retries",
        type=int,
        default=4,
        metavar="N",
        help="retries of a failed API call, with exponential backoff (default: 4)",
    )
    return parser


def init_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} init-db",
        description="Create or upgrade the target schema (signal, data); safe to repeat.",
    )
    _database_option(parser)
    return parser


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"malformed date {text!r} for {option}: expected YYYY-MM-DD"
        ) from None


def parse_variables(text: str) -> list[str]:
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise InvalidInputError("--variables is empty: give names like wind_speed,power")
    return names


def create_target_schema(database_url: str) -> None:
    from wind_pipeline.etl.db import create_engine
    from wind_pipeline.etl.schema import create_schema

    engine = create_engine(database_url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()


def init_db(args: argparse.Namespace) -> int:
    create_target_schema(args.database_url)
    print("target schema ready (tables signal, data)")
    return 0


def ensure_schema(database: DirectDatabase) -> None:
    """Create the schema if a table is missing; only then is SQLAlchemy imported."""
    from wind_pipeline.etl.db import schema_present

    if not schema_present(database):
        create_target_schema(database.url)


def run(args: argparse.Namespace) -> int:
    first = parse_day(args.date, "DATE")
    last = parse_day(args.end, "--end") if args.end else first
    if last < first:
        raise InvalidInputError(f"--end {last} is before DATE {first}")
    if args.retries < 0:
        raise InvalidInputError(f"--retries must be 0 or more, not {args.retries}")
    variables = parse_variables(args.variables)

    # httpx imports its own command line (click, rich, pygments: ~0.1 s) when it can; we never
    # use it, and a None entry makes that optional import fail fast.
    sys.modules.setdefault("httpx._main", None)
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import DirectDatabase
    from wind_pipeline.etl.pipeline import run_range

    days = (last - first).days + 1
    began = time.perf_counter()
    with ConnectorClient(args.api_url, args.api_key, retries=args.retries) as client:
        database = DirectDatabase(args.database_url)
        ensure_schema(database)  # before the fetch: a wrong URL fails in a second, not after it
        if days >= PROGRESS_MIN_DAYS:
            print(f"{PROG}: fetching {days} days from {args.api_url} …", file=sys.stderr)
        reports = run_range(
            client,
            database,
            first,
            last,
            variables,
            allow_empty=args.allow_empty,
            on_day=Progress(days),
        )
    if days > 1:
        read = sum(r.rows_read for r in reports)
        written = sum(r.rows_written for r in reports)
        seconds = time.perf_counter() - began
        print(f"total: {days} days, read {read} rows, wrote {written} rows in {seconds:.2f} s")
    return 0


class Progress:
    """Each day's summary on stdout as it lands; for long ranges a count every tenth on stderr."""

    def __init__(self, days: int) -> None:
        self.days, self.done = days, 0
        self.every = max(1, days // 10) if days >= PROGRESS_MIN_DAYS else 0

    def __call__(self, report: DayReport) -> None:
        self.done += 1
        print(report.summary(), flush=True)
        if self.every and (self.done % self.every == 0 or self.done == self.days):
            print(f"{PROG}: loaded {self.done}/{self.days} days", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["init-db"]:
            return init_db(init_parser().parse_args(argv[1:]))
        return run(run_parser().parse_args(argv))
    except PipelineError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        message = "interrupted: the days reported above are loaded; re-run the range for the rest"
        print(f"{PROG}: {message}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
