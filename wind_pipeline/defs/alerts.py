"""Alerts of the code location: one webhook POST per failed run, whatever launched it.

A run-failure sensor sees every failed run of this code location (``wind_etl_job``, the schedule's
and the ``source_changes`` sensor's runs, a materialization started in the UI or with
``dagster asset materialize``) and posts one alert naming the run id, the job, the day(s) and the
error. It starts RUNNING: it does nothing until ``WIND_PIPELINE_ALERT_WEBHOOK`` is set, and
someone who sets it expects alerts without switching on a second thing. It needs the
dagster-daemon, as every sensor does (``dagster dev`` and ``make run`` start one).
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from wind_pipeline.etl.alerts import WEBHOOK_VARIABLE, failure_text, post_alert, webhook_url

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_partitions(tags: Mapping[str, str]) -> list[str]:
    """The day a run covers, or the first and last day of its range; empty when unpartitioned."""
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        first, last = tags[RANGE_START_TAG], tags[RANGE_END_TAG]
        return [first] if first == last else [first, last]
    return []


def failure_error(context: dg.RunFailureSensorContext) -> str | None:
    """The first failed step's error (what broke), else the run's own failure message."""
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data is not None and data.error is not None:
            return f"{event.step_key}: {data.error.message}"
    return context.failure_event.message


@dg.run_failure_sensor(
    name="alert_on_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts one alert per failed run to {WEBHOOK_VARIABLE} (unset: does nothing).",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext):
    url = webhook_url()
    if url is None:
        return dg.SkipReason(f"{WEBHOOK_VARIABLE} is not set")
    run = context.dagster_run
    text = failure_text(run.run_id, run.job_name, run_partitions(run.tags), failure_error(context))
    post_alert(url, text)  # logs, and never raises, when the webhook fails
    return None
