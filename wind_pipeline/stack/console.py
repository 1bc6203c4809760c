"""What the user reads: one-line errors, progress lines and the banner once the stack is up."""

from __future__ import annotations

import shlex
from datetime import UTC, date, datetime, timedelta
from pathlib import Path


class StackError(Exception):
    """A problem the user can act on: printed as one line, exit status 1."""


class StopRequested(Exception):
    """Raised by the SIGINT/SIGTERM/SIGHUP handler to unwind into the shutdown path."""


def say(message: str) -> None:
    print(f"wind-stack: {message}", flush=True)


def banner(
    *, ui: str, api: str, data: Path, logs: Path, env_file: Path, env: dict[str, str], start: date
) -> str:
    """The URLs, what to click first, and the environment for another shell."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    try:
        shown = data.relative_to(Path.cwd())
    except ValueError:
        shown = data
    # The API key, if any, came from this shell: never echo a secret to the screen.
    shown_env = {k: v for k, v in env.items() if k != "CONNECTOR_API_KEY"}
    exports = "\n".join(f"  export {k}={shlex.quote(v)}" for k, v in shown_env.items())
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

The CLI against this stack, from another shell (or `source {env_file}`):
{exports}
  wind-etl {yesterday}
  dagster asset materialize -m wind_pipeline.definitions --select '*' --partition {yesterday}
"""
