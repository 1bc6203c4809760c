"""How long to wait and how often to try again: every timeout and retry count of the core.

The CLI's ``--retries``, the client's defaults, the Dagster resource's fields and the per-day
retry of a load all start from these, so that a change of policy is made in one place.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from wind_pipeline.etl.errors import TransientError

T = TypeVar("T")

API_TIMEOUT = 30.0  # seconds to wait for a read; a year of readings arrives well within it
CONNECT_TIMEOUT = 5.0  # a server that does not accept within 5 s is down, not slow
API_RETRIES = 4  # retries after the first attempt: 5 attempts in all
API_BACKOFF = 0.5  # seconds before the first retry, doubled each time
MAX_BACKOFF = 10.0  # cap of one wait
JITTER = 0.5  # each wait is scaled by a random factor in [1 - JITTER, 1]
# Retries of a day whose load lost the target (a restart takes seconds: waits 0.5, 1, 2, 4, 8,
# 10 s before jitter, about 25 s in all).
TARGET_RETRIES = 6
TARGET_BACKOFF = 0.5


def backoff_delay(attempt: int, backoff: float) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): exponential, capped, jittered."""
    return min(MAX_BACKOFF, backoff * 2**attempt) * (1 - JITTER * random.random())


def retrying(
    work: Callable[[], T], retries: int, sleep: Callable[[float], None] = time.sleep
) -> tuple[T, int]:
    """``work()``'s result and the attempts it took, retrying ``TransientError`` with backoff.

    The one rule for the target: a refused or dropped connection is worth another try, whether
    it happens before the first day (the schema check) or during one (its load).
    """
    attempt = 0
    while True:
        try:
            return work(), attempt + 1
        except TransientError:
            if attempt >= retries:
                raise
            sleep(backoff_delay(attempt, TARGET_BACKOFF))
            attempt += 1
