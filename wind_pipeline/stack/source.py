"""The source database: seeded once when empty, never touched again; where partitions begin.

``connector-api seed`` does the generating, as a process: the stack never imports
``connector_api``. (docker compose seeds with ``connector-api seed --if-empty`` itself.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def source_has_rows(url: str) -> bool:
    """Whether the source table ``data`` has a row (False when it does not exist yet); one index
    probe, not a count, so a fleet's years cost nothing at start-up."""
    import sqlalchemy as sa

    with _engine(url).connect() as conn:
        if conn.execute(sa.text("SELECT to_regclass('public.data')")).scalar() is None:
            return False
        return conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM data)")).scalar_one()


def seed_source_if_empty(url: str, days: int, *, turbines: int = 1, faults: bool = False) -> bool:
    """Generate ``days`` days of ``turbines`` turbines ending yesterday when the source is empty;
    return whether it did.
    Existing data is never touched, whatever its range."""
    if source_has_rows(url):
        say("source: has data already; not seeding")
        return False
    start = datetime.now(UTC).date() - timedelta(days=days)
    plural = "s" if days != 1 else ""
    fleet = f" of {turbines} turbines" if turbines > 1 else ""
    say(f"source: empty; generating {days} day{plural}{fleet} from {start} (connector-api seed)")
    argv = ["connector-api", "seed", "--start", start.isoformat(), "--days", str(days)]
    argv += ["--turbines", str(turbines)]
    output = run_tool(*argv, "--database-url", url, *(["--faults"] if faults else []))
    if output:
        say(f"source: {output.splitlines()[-1]}")
    return True


def first_source_day(url: str) -> date:
    """The UTC day of the first reading: where the Dagster partitions begin."""
    import sqlalchemy as sa

    # One index probe per turbine on the (turbine_id, timestamp) key, not a scan of a fleet's
    # years; a previous-release source (no turbine table, keyed on timestamp) is one probe too.
    per_turbine = sa.text(
        "SELECT min((SELECT min(timestamp) FROM data WHERE turbine_id = turbine.id)) FROM turbine"
    )
    single = sa.text("SELECT min(timestamp) FROM data")
    with _engine(url).connect() as conn:
        fleet = conn.execute(sa.text("SELECT to_regclass('public.turbine')")).scalar() is not None
        first = conn.execute(per_turbine if fleet else single).scalar()
    day = first.astimezone(UTC).date() if first is not None else None
    if day is None:
        raise StackError("the source table is still empty after seeding; see connector-api seed")
    return day
