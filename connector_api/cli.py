"""``connector-api``: seed the source database, or serve the API over it.

Heavy imports (numpy, FastAPI, uvicorn) happen inside the subcommands so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime

PROG = "connector-api"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _fail(command: str, message: str, code: int = 1) -> int:
    print(f"{PROG} {command}: error: {message}", file=sys.stderr)
    return code


def _parse_date(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a date; expected YYYY-MM-DD") from None


def _database_url(args: argparse.Namespace) -> str:
    from connector_api.settings import DEFAULT_DATABASE_URL, psycopg2_url

    return psycopg2_url(
        args.database_url or os.environ.get("SOURCE_DATABASE_URL") or DEFAULT_DATABASE_URL
    )


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive(option: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{option} must be at least 1, got {value}")
    return value


def _progress(message: str) -> None:
    print(f"{PROG} seed: {message}", file=sys.stderr, flush=True)


def run_seed(args: argparse.Namespace) -> int:
    """Generate and write the range; print what was written."""
    try:
        start, end = _parse_date("--start", args.start), _parse_date("--end", args.end)
        turbines = _positive("--turbines", args.turbines)
        if args.faults_log and not args.faults:
            raise ValueError("--faults-log needs --faults (there is nothing to log without them)")
        url = _database_url(args)
        from connector_api import generator

        first, last = generator.resolve_range(start, args.days, end)
    except ValueError as error:
        return _fail("seed", str(error), 2)
    from connector_api import db

    # the log is written beside its final name and renamed once the rows are committed
    partial = f"{args.faults_log}.partial" if args.faults_log else None
    try:
        sink = open(partial, "wb") if partial else None  # noqa: SIM115
    except OSError as error:
        return _fail("seed", f"--faults-log {args.faults_log}: {error.strerror}", 2)
    try:
        report = generator.write(
            url,
            first,
            last,
            seed=args.seed,
            turbines=turbines,
            faults=args.faults,
            faults_log=sink,
            replace=args.replace,
            if_empty=args.if_empty,
            progress=_progress,
        )
    except db.ERRORS as error:
        if sink:
            sink.close()
            os.remove(partial)
        return _fail("seed", f"database {db.safe_url(url)}: {db.first_line(error)}")
    skipped = args.if_empty and report.rows_generated == 0
    if sink:
        sink.close()
        if skipped:
            os.remove(partial)  # nothing was generated: no log either
        else:
            os.replace(partial, args.faults_log)
    fleet = f"{turbines} turbine{'s' if turbines > 1 else ''}"
    if skipped:
        print(f"not seeding: the source table already has rows ({fleet} asked)")
        return 0
    logged = f"; {report.faults_logged} faulty readings logged" if sink else ""
    print(
        f"seeded {_iso(report.start)} to {_iso(report.end)} (end exclusive), {fleet}: "
        f"{report.rows_written} rows written of {report.rows_generated} generated "
        f"in {report.seconds:.2f} s{logged}"
    )
    return 0


def _bind(host: str, port: int):
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # claim the port now: a bound, non-listening socket can be shared
    except OSError as error:
        sock.close()
        message = f"cannot listen on {host}:{port}: {error.strerror}; choose another --port"
        raise OSError(message) from None
    return sock


def _upgrade_schema(url: str) -> None:
    """Create the source tables, or upgrade a previous release's in place (rows kept)."""
    from connector_api import db
    from connector_api.schema import ensure_schema

    conn = db.connect(url)
    try:
        with conn, conn.cursor() as cur:
            ensure_schema(cur)
    finally:
        conn.close()


def run_serve(args: argparse.Namespace) -> int:
    """Check the database and the port, optionally catch up and go live, then serve."""
    from connector_api import db, live

    try:
        url = _database_url(args)
        if args.turbines is not None:
            _positive("--turbines", args.turbines)
        if args.outages and not args.live:
            raise ValueError("--outages needs --live (an outage withholds live minutes)")
    except ValueError as error:
        return _fail("serve", str(error), 2)
    try:
        _upgrade_schema(url)
    except db.ERRORS as error:
        return _fail(
            "serve", f"cannot reach the source database {db.safe_url(url)}: {db.first_line(error)}"
        )
    try:
        sock = _bind(args.host, args.port)
    except OSError as error:
        return _fail("serve", str(error))

    import logging

    import uvicorn

    from connector_api.app import create_app
    from connector_api.settings import Settings

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    appender = None
    if args.live:
        from connector_api.outages import OutageWriter

        options = dict(seed=args.seed, faults=args.faults, turbines=args.turbines)
        outages = OutageWriter(url, **options) if args.outages else None
        now = datetime.now(UTC)
        report = outages.tick(now) if outages else live.catch_up(url, **options, now=now)
        caught = f"{report.rows_written} rows up to {_iso(report.end)}" if report else "up to date"
        late = ", with communication outages (readings delivered late)" if outages else ""
        print(f"live: caught up ({caught}); appending each new minute{late}", flush=True)
        appender = live.LiveAppender(url, outages=outages, **options)
        appender.start()
    print(f"serving http://{args.host}:{args.port} (docs at /docs)", flush=True)
    config = uvicorn.Config(
        create_app(Settings(database_url=url)),
        log_level=args.log_level,
        timeout_graceful_shutdown=3,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if appender:
            appender.stop()
            appender.join(timeout=5)
        sock.close()
    return 0


# The plan's figures are constants of connector_api.outages (not imported here: --help is instant).
OUTAGES_HELP = (
    "with --live: simulate communication outages, reproducibly per --seed: for each turbine and"
    " hour an outage starts with probability 1/24 (about one a day), lasts 1-6 hours, and its"
    " readings arrive together 10-180 minutes after it ends"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="The source side: seed the database, serve the API.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    url_help = "SQLAlchemy URL of the source database (default: $SOURCE_DATABASE_URL)"

    seed = commands.add_parser("seed", help="generate one-minute readings into the source table")
    seed.add_argument(
        "--start", metavar="DATE", help="first day, UTC (default: DAYS days before today)"
    )
    span = seed.add_mutually_exclusive_group()
    span.add_argument("--days", type=int, default=10, help="number of days (default: 10)")
    span.add_argument("--end", metavar="DATE", help="day after the last one (exclusive)")
    seed.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    seed.add_argument(
        "--turbines",
        type=int,
        default=1,
        metavar="N",
        help="fleet size: turbines WTG01 ... on the farm layout (default: 1)",
    )
    seed.add_argument(
        "--faults",
        action="store_true",
        help="inject gaps, NULL runs, frozen values, out-of-range and in-range spikes",
    )
    seed.add_argument(
        "--faults-log",
        metavar="FILE",
        help="with --faults: write the ground truth as CSV"
        " (turbine_id,timestamp,variable,fault), one line per corrupted reading",
    )
    seed.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the fleet's rows of the range instead of insert-or-ignore",
    )
    seed.add_argument(
        "--if-empty",
        action="store_true",
        help="seed only when the source table has no row (what a first start runs)",
    )
    seed.add_argument("--database-url", help=url_help)
    seed.set_defaults(run=run_seed)

    serve = commands.add_parser("serve", help="serve the connector API")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument(
        "--live", action="store_true", help="fill up to now, then append each new minute"
    )
    serve.add_argument(
        "--seed", type=int, default=42, help="random seed of live minutes (default: 42)"
    )
    serve.add_argument("--faults", action="store_true", help="inject faults into live minutes")
    serve.add_argument("--outages", action="store_true", help=OUTAGES_HELP)
    serve.add_argument(
        "--turbines",
        type=int,
        metavar="N",
        help="fleet of the live minutes (default: the turbines already in the source, or 1)",
    )
    serve.add_argument("--database-url", help=url_help)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(run=run_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
