"""``wind-etl sync``: reload exactly the (day, turbine)s whose source changed since their load.

The loop is the core's (``etl/reload.py``); this module holds the arguments, the window and the
lines printed. It shares ``wind-etl``'s options, exit codes and environment (``cli.py``).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta

from wind_pipeline import cli
from wind_pipeline.etl.errors import InvalidInputError
from wind_pipeline.etl.sync import DEFAULT_LOOKBACK_DAYS, LOOKBACK_VARIABLE

PROG = f"{cli.PROG} sync"
USAGE = f"""{PROG} [--since DAYS | DATE [--end DATE]] [--turbines WTG01,WTG02] [--dry-run]
                     [--variables a,b] [--qc on|off] [--api-url URL] [--api-key KEY]
                     [--database-url URL] [--retries N]"""
DESCRIPTION = f"""\
Compare what the source holds (GET /days: a version per UTC day and turbine, which changes with
every insert, correction or deletion of a reading) with what the target loaded (its loaded_day
records), and reload exactly the (day, turbine)s that differ: only the changed turbines of a day,
one transaction per day. One line per day says which turbines and why:

  new                    the source has readings the target never loaded
  changed OLD → NEW      the source's version moved (late, corrected or deleted readings)
  retracted              the source has no reading left: the turbine's day is loaded with zero
                         counts (its old rows replaced) and recorded with 0 readings
  rules changed          same readings, loaded under other quality rules (GET /variables changed)

A second sync right after does nothing and says so in one line. Exit 0 when done; a sync that
stops (killed, Ctrl-C, an error) leaves each day at its previous rows and record or at its new
ones, and the next sync finishes the job.

Window: DATE..END (inclusive, UTC, as for `wind-etl DATE --end`), or --since DAYS days ending
yesterday; default ${LOOKBACK_VARIABLE} ({DEFAULT_LOOKBACK_DAYS}) days ending yesterday. Today is
never synced: it is not over yet."""
EPILOG = f"""\
examples:
  {PROG}                       # the last {DEFAULT_LOOKBACK_DAYS} days, ending yesterday
  {PROG} --since 7 --dry-run   # what the last week would reload; loads nothing
  {PROG} 2024-01-01 --end 2024-01-31 --turbines WTG01,WTG02

environment and exit codes: as for `{cli.PROG}` (see {cli.PROG} --help); a failed sync posts
one alert to $WIND_PIPELINE_ALERT_WEBHOOK when it is set."""


def sync_parser() -> argparse.ArgumentParser:
    parser = cli._Parser(
        prog=PROG,
        usage=USAGE,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("date", metavar="DATE", nargs="?", help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--end", metavar="DATE", help="last day, inclusive (default: DATE)")
    parser.add_argument(
        "--since",
        type=int,
        metavar="DAYS",
        help=f"the DAYS days ending yesterday (default: ${LOOKBACK_VARIABLE} or "
        f"{DEFAULT_LOOKBACK_DAYS})",
    )
    parser.add_argument(
        "--turbines",
        metavar="WTG01,WTG02",
        help="compare and reload only these turbines (default: every turbine of the source)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be reloaded; load nothing"
    )
    parser.add_argument(
        "--variables",
        default=cli.DEFAULT_VARIABLES,
        metavar="a,b",
        help=f"variables the reloads write (default: {cli.DEFAULT_VARIABLES})",
    )
    parser.add_argument(
        "--qc",
        choices=("on", "off"),
        default="on",
        help="quality control of the reloads (default on); part of the rules compared",
    )
    parser.add_argument("--api-url", default=cli.api_url(), metavar="URL")
    parser.add_argument("--api-key", default=cli.api_key(), metavar="KEY")
    cli._database_option(parser)
    parser.add_argument("--retries", type=int, default=cli.DEFAULT_RETRIES, metavar="N")
    return parser


def window(args: argparse.Namespace, today: date) -> tuple[date, date]:
    """The days to compare, checked: explicit dates or ``--since``, never today or later."""
    from wind_pipeline.etl.sync import default_window

    if args.since is not None and (args.date or args.end):
        raise InvalidInputError("give either --since DAYS or DATE [--end DATE], not both")
    if args.end and not args.date:
        raise InvalidInputError("--end needs a first DATE")
    if args.date:
        first = cli.parse_day(args.date, "DATE")
        last = cli.parse_day(args.end, "--end") if args.end else first
        if last < first:
            raise InvalidInputError(f"--end {last} is before DATE {first}")
    else:
        if args.since is not None and args.since < 1:
            raise InvalidInputError(f"--since must be 1 day or more, not {args.since}")
        first, last = default_window(today, args.since)
    if last >= today:
        raise InvalidInputError(
            f"the window ends {last}, but today ({today}) is not over yet",
            hint=f"end it at {today - timedelta(days=1)} at the latest",
        )
    return first, last


def run_sync(args: argparse.Namespace) -> int:
    """``wind-etl sync``: compare, reload what differs, one line per day; 0 when done."""
    first, last = window(args, datetime.now(UTC).date())
    if args.retries < 0:
        raise InvalidInputError(f"--retries must be 0 or more, not {args.retries}")

    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import DirectDatabase
    from wind_pipeline.etl.reload import sync
    from wind_pipeline.etl.retries import retrying

    began = time.perf_counter()
    with ConnectorClient(args.api_url, args.api_key, retries=args.retries) as client:
        database = DirectDatabase(args.database_url)
        try:
            retrying(lambda: cli.ensure_schema(args.database_url, database), args.retries)
            done = cli.interruptible(
                lambda: sync(
                    client,
                    database,
                    first,
                    last,
                    variables=args.variables,
                    turbines=args.turbines,
                    qc=args.qc == "on",
                    dry_run=args.dry_run,
                    on_day=cli.say,
                    target_retries=args.retries,
                ),
                database,
            )
        finally:
            database.dispose()
    if not done.changes:
        cli.say(done.nothing_line())
    elif not args.dry_run:
        cli.say(done.done_line(time.perf_counter() - began))
    return 0
