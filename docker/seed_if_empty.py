"""One-shot compose service: seed the source database on first start only, never drop.

Generates the days from ``WIND_PIPELINE_START_DATE`` to yesterday when the table is empty or
missing; the connector API's live mode then fills today up to now. Same rule as ``wind-stack``.
"""

import os
import sys
from datetime import UTC, date, datetime

from wind_pipeline.stack.console import StackError
from wind_pipeline.stack.source import seed_source_if_empty


def report(message: str) -> None:
    print(f"seed: {message}", flush=True)


def main() -> int:
    text = os.environ.get("WIND_PIPELINE_START_DATE", "")
    try:
        start = date.fromisoformat(text)
    except ValueError:
        print(
            f"seed: WIND_PIPELINE_START_DATE={text!r} is not a date (YYYY-MM-DD)", file=sys.stderr
        )
        return 2
    days = (datetime.now(UTC).date() - start).days
    if days < 1:
        print(f"seed: WIND_PIPELINE_START_DATE={text} is not in the past", file=sys.stderr)
        return 2
    try:
        seed_source_if_empty(os.environ["SOURCE_DATABASE_URL"], days, start=start, report=report)
    except StackError as error:
        print(f"seed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
