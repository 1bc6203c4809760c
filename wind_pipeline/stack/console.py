"""What the user reads: one-line errors, progress lines and the banner once the stack is up.

Every write survives its reader going away: ``make run | tee run.log`` and Ctrl-C kills ``tee``
first, and the stack still has lines to print while it stops what it started. A broken pipe
sends the rest of that stream to /dev/null instead of raising in the middle of the shutdown.
"""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO


class StackError(Exception):
    """A problem the user can act on: printed as one line, exit status 1."""


class StopRequested(Exception):
    """Raised by the SIGINT/SIGTERM/SIGHUP handler to unwind into the shutdown path."""


def say(message: str) -> None:
    emit(f"wind-stack: {message}")


def error(message: str) -> None:
    emit(f"wind-stack: {message}", sys.stderr)


def emit(text: str, stream: TextIO | None = None) -> None:
    """Print and flush ``text``; a closed or broken reader silences the stream from then on."""
    stream = stream or sys.stdout
    try:
        stream.write(text + "\n")
        stream.flush()
    except (BrokenPipeError, ValueError):  # ValueError: the stream object itself was closed
        _silence(stream)


def _silence(stream: TextIO) -> None:
    """Point the stream's file descriptor at /dev/null, so that later writes and the flush at
    interpreter exit succeed quietly (Python's own advice for SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def banner(*, ui: str | None, api: str, data: Path, logs: Path, start: date) -> str:
    """The URLs, what to click first, and how the commands typed in this folder find the stack."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    try:
        shown = data.relative_to(Path.cwd())
    except ValueError:
        shown = data
    materialize = (
        f"dagster asset materialize -m wind_pipeline.definitions --select '*' "
        f"--partition {yesterday}"
    )
    if ui is None:
        return f"""
wind-stack is up: PostgreSQL and the connector API, without Dagster. Ctrl-C stops them; the
data stays in {shown}/ for the next start.

  Connector API   {api}/docs
  Source data     from {start} (UTC), live: a new reading every minute
  Logs            {logs}/

Dagster is yours to run, typed in this folder: it reads ./.env, written by the stack, so it
uses the stack's databases and Dagster instance (what your shell exports wins):
  dagster dev
  {materialize}
  wind-etl {yesterday}
"""
    return f"""
wind-stack is up. Ctrl-C stops everything; the data stays in {shown}/ for the next start.

  Dagster UI      {ui}
  Connector API   {api}/docs
  Source data     from {start} (UTC), live: a new reading every minute
  Logs            {logs}/

First click: {ui}/locations/wind_pipeline/asset-groups/wind -> Materialize all
  -> partition {yesterday} (yesterday, complete) -> Launch run. The run page shows extract,
  transform and load with their checks. Then: a range of partitions from the same dialog
  (a backfill, in one run), and the schedule wind_etl_daily switched on in Automation.

Typed in this folder, these use this stack (./.env, written by the stack, says where it is):
  wind-etl {yesterday}
  {materialize}
  dagster-webserver -p 3001   # a second UI on the same runs; `dagster dev -p 3001` works too
                              # (with a second daemon): for a dagster dev of your own, make services
"""
