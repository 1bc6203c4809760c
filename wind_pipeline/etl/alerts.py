"""Alerts to a webhook: one JSON POST ``{"text": …}``, the payload Slack's incoming webhooks take.

``WIND_PIPELINE_ALERT_WEBHOOK`` names the URL; unset, nothing is sent. An alert is a courtesy on
top of the run, never part of it: a webhook that refuses, times out or answers an error is
logged and ``post_alert`` returns False; it never raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import date

import httpx

from wind_pipeline.etl.db import redact

WEBHOOK_VARIABLE = "WIND_PIPELINE_ALERT_WEBHOOK"
# An alert waits at most this long: a run that failed, or a check that warned, is not held up
# by a slow receiver for more than a few seconds.
ALERT_TIMEOUT_SECONDS = 5.0

log = logging.getLogger(__name__)


def webhook_url() -> str | None:
    """The webhook from the environment, None when unset or blank (no alerts)."""
    return os.environ.get(WEBHOOK_VARIABLE, "").strip() or None


def post_alert(url: str, text: str, *, timeout: float = ALERT_TIMEOUT_SECONDS) -> bool:
    """POST ``{"text": text}`` to ``url``; True when the receiver answered 2xx."""
    try:
        response = httpx.post(url, json={"text": text}, timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:  # refused, timed out
        log.warning("alert not sent to the webhook: %s", _problem(exc))
        return False
    if not response.is_success:
        log.warning("alert refused by the webhook: HTTP %s", response.status_code)
        return False
    return True


def _problem(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def failure_text(
    run_id: str, job: str, partitions: Iterable[str] = (), error: str | None = None
) -> str:
    """The alert of a failed run: run id, job, day(s), and the first line of the error."""
    days = list(partitions)
    span = ""
    if len(days) == 1:
        span = f" for {days[0]}"
    elif days:
        span = f" for {days[0]}..{days[-1]}"
    text = f"wind_pipeline: run {run_id} of {job}{span} failed"
    if error:
        text += f": {error.strip().splitlines()[0] if error.strip() else error}"
    return text


def warning_text(day: date | str, counts: Mapping[str, int], run_id: str | None = None) -> str:
    """The alert of a day whose checks warn: the day, the run and each warning's count."""
    day = day.isoformat() if isinstance(day, date) else day
    listed = ", ".join(f"{name} {count}" for name, count in counts.items()) or "no counts"
    run = f" (run {run_id})" if run_id else ""
    return f"wind_pipeline: checks warn for {day}{run}: {listed}"


def warn_alert(
    day: date | str,
    counts: Mapping[str, int],
    *,
    run_id: str | None = None,
    url: str | None = None,
) -> bool:
    """Post the warning alert of ``day`` when a webhook is set; False when none is or it fails.

    ``counts`` names each warning check (or what it counted) with its count, e.g.
    ``{"readings_complete": 1320}``; the checks of a day call this once for the day.
    """
    url = url or webhook_url()
    if url is None:
        return False
    return post_alert(url, warning_text(day, counts, run_id))


def command_failure_text(command: str, error: str) -> str:
    """The alert of a failed ``wind-etl`` command: what was typed and the first error line."""
    first = error.strip().splitlines()[0] if error.strip() else "failed"
    return f"wind_pipeline: `{command}` failed: {first}"


def alert_command_failure(argv: list[str], error: str, *, prog: str = "wind-etl") -> bool:
    """Post one alert for a failed ``wind-etl DATE`` or ``wind-etl sync`` when a webhook is set.

    Bad input (exit 2) is told to whoever typed it and sends nothing: no load started. Options
    that may carry a secret (``--api-key``, ``--database-url``) are left out of the text.
    """
    url = webhook_url()
    if url is None:
        return False
    shown: list[str] = []
    secret = False
    for arg in argv:
        if secret:
            secret = False
            continue
        if arg in ("--api-key", "--database-url"):
            secret = True
            continue
        if arg.startswith(("--api-key=", "--database-url=")):
            continue
        shown.append(redact(arg))  # a URL's password (--api-url=http://user:pw@…) never leaves
    return post_alert(url, command_failure_text(" ".join([prog, *shown]), redact(error)))
