"""``python -m wind_pipeline.stack``: the same as ``wind-stack``."""

import sys

from wind_pipeline.stack.cli import main

sys.exit(main())
