"""The source database: seeded once when empty, never touched again; where partitions begin.

``connector-api seed`` does the generating, as a process: the stack never imports
``connector_api``. Shared with the docker compose ``seed`` one-shot.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from wind_pipeline.stack.console import StackError, say


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


def _engine(url: str):
    import sqlalchemy as sa

    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def source_row_count(url: str) -> int:
    """Rows in the source table ``data``; 0 when the table does not exist yet."""
    import sqlalchemy as sa

    with _engine(url).connect() as conn:
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
    """Generate ``days`` days (ending today by default) when the source is empty; return whether
    it did. Existing data is never touched, whatever its range."""
    rows = source_row_count(url)
    if rows:
        report(f"source: {rows:,} rows already there; not seeding")
        return False
    start = start or datetime.now(UTC).date() - timedelta(days=days)
    plural = "s" if days != 1 else ""
    report(f"source: empty; generating {days} day{plural} from {start} (connector-api seed)")
    argv = ["connector-api", "seed", "--start", start.isoformat(), "--days", str(days)]
    output = run_tool(*argv, "--database-url", url, *(["--faults"] if faults else []))
    if output:
        report(f"source: {output.splitlines()[-1]}")
    return True


def first_source_day(url: str) -> date:
    """The UTC day of the first reading: where the Dagster partitions begin."""
    import sqlalchemy as sa

    query = sa.text("SELECT (min(timestamp) AT TIME ZONE 'UTC')::date FROM data")
    with _engine(url).connect() as conn:
        day = conn.execute(query).scalar()
    if day is None:
        raise StackError("the source table is still empty after seeding; see connector-api seed")
    return day
