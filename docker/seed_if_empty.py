"""Deprecated shim: the compose ``seed`` one-shot should run ``connector-api seed --if-empty``.

Kept only until the image and compose file call the command directly; seeds the days from
``WIND_PIPELINE_START_DATE`` up to yesterday when the source table has no row.
"""

import os
import sys
from datetime import UTC, datetime

from connector_api.cli import main

if __name__ == "__main__":
    start = os.environ.get("WIND_PIPELINE_START_DATE", "")
    today = datetime.now(UTC).date().isoformat()
    sys.exit(main(["seed", "--if-empty", "--start", start, "--end", today]))
