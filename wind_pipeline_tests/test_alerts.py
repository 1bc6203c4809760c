"""Alerts: one JSON POST to a real local receiver per failed run and per warning day; a webhook
that refuses is logged and never raises."""

import logging
from datetime import date

import dagster as dg

from wind_pipeline.defs.alerts import alert_on_run_failure, run_partitions
from wind_pipeline.defs.assets import raw_readings, signal_data, ten_minute_stats
from wind_pipeline.etl.alerts import WEBHOOK_VARIABLE, failure_text, post_alert, warn_alert
from wind_pipeline_tests.dagster_support import resources
from wind_pipeline_tests.http_receiver import closed_port_url, receiver


def test_post_alert_sends_one_slack_compatible_json_post():
    with receiver() as hook:
        assert post_alert(hook.url + "/hook", "hello") is True
    (request,) = hook.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {"text": "hello"}


def test_a_refused_or_failing_webhook_returns_false_and_is_logged(caplog):
    caplog.set_level(logging.WARNING, logger="wind_pipeline.etl.alerts")
    assert post_alert(closed_port_url(), "lost", timeout=2) is False
    with receiver(status=500) as hook:
        assert post_alert(hook.url, "refused") is False
    assert post_alert("not a url", "x") is False
    messages = [record.getMessage() for record in caplog.records]
    assert any("ConnectError" in m for m in messages), messages
    assert any("HTTP 500" in m for m in messages), messages


def test_warn_alert_names_the_day_the_run_and_the_counts(monkeypatch):
    monkeypatch.delenv(WEBHOOK_VARIABLE, raising=False)
    assert warn_alert(date(2026, 11, 30), {"readings_complete": 3}) is False  # no webhook set
    with receiver() as hook:
        monkeypatch.setenv(WEBHOOK_VARIABLE, hook.url)
        counts = {"readings_complete": 120, "rejected_share": 2}
        assert warn_alert(date(2026, 11, 30), counts, run_id="abc123") is True
    (request,) = hook.requests
    assert request.json() == {
        "text": "wind_pipeline: checks warn for 2026-11-30 (run abc123): "
        "readings_complete 120, rejected_share 2"
    }


def test_the_failure_text_names_run_job_days_and_error():
    assert failure_text("r1", "wind_etl_job", ["2026-11-01", "2026-11-03"], "boom\nmore") == (
        "wind_pipeline: run r1 of wind_etl_job for 2026-11-01..2026-11-03 failed: boom"
    )
    assert run_partitions({"dagster/partition": "2026-11-30"}) == ["2026-11-30"]
    range_tags = {
        "dagster/asset_partition_range_start": "2026-11-01",
        "dagster/asset_partition_range_end": "2026-11-03",
    }
    assert run_partitions(range_tags) == ["2026-11-01", "2026-11-03"]
    assert run_partitions({}) == []


def failed_run(seed_source, serve_api, target_url, tmp_path):
    """A real run of the three assets that fails at once: the source has no readings for its
    day (a terminal error, so no retry)."""
    seed_source(days=1)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [raw_readings, ten_minute_stats, signal_data],
        resources=resources(serve_api(), target_url, tmp_path / "storage"),
        instance=instance,
        partition_key="2024-01-05",
        raise_on_error=False,
    )
    assert not result.success
    return instance, result


def sensor_context(instance, result):
    return dg.build_run_status_sensor_context(
        sensor_name=alert_on_run_failure.name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()


def test_a_failed_run_posts_exactly_one_alert(
    seed_source, serve_api, target_url, tmp_path, monkeypatch
):
    instance, result = failed_run(seed_source, serve_api, target_url, tmp_path)
    with receiver() as hook:
        monkeypatch.setenv(WEBHOOK_VARIABLE, hook.url + "/alerts")
        alert_on_run_failure(sensor_context(instance, result))
    (request,) = hook.requests
    text = request.json()["text"]
    run = result.dagster_run
    assert text.startswith(
        f"wind_pipeline: run {run.run_id} of {run.job_name} for 2024-01-05 failed"
    )
    assert "raw_readings" in text and "no source data for 2024-01-05" in text


def test_a_refused_webhook_leaves_the_sensor_quiet(
    seed_source, serve_api, target_url, tmp_path, monkeypatch
):
    instance, result = failed_run(seed_source, serve_api, target_url, tmp_path)
    monkeypatch.setenv(WEBHOOK_VARIABLE, closed_port_url())
    alert_on_run_failure(sensor_context(instance, result))  # logs; raises nothing
    monkeypatch.delenv(WEBHOOK_VARIABLE)
    skipped = alert_on_run_failure(sensor_context(instance, result))
    assert isinstance(skipped, dg.SkipReason) and WEBHOOK_VARIABLE in skipped.skip_message


def test_a_failed_wind_etl_and_sync_post_one_alert_each_bad_input_none(
    seed_source, serve_api, target_url, monkeypatch
):
    """The CLI's failures: a day without source data (exit 6), a sync against a target that
    refuses (exit 7); a typo in a date (exit 2) is told to the terminal only. No secret leaks."""
    from wind_pipeline import cli
    from wind_pipeline_tests.ports import free_port

    seed_source(days=1)
    api = serve_api()
    with receiver() as hook:
        monkeypatch.setenv(WEBHOOK_VARIABLE, hook.url)
        assert cli.main(["2024-01-05", "--api-url", api, "--database-url", target_url]) == 6
        dead = f"postgresql://u:secret@127.0.0.1:{free_port()}/t"
        args = ["sync", "2024-01-01", "--api-url", api, "--database-url", dead, "--retries", "0"]
        assert cli.main(args) == 7
        assert cli.main(["2024-13-01", "--api-url", api, "--database-url", target_url]) == 2
    texts = [request.json()["text"] for request in hook.requests]
    assert len(texts) == 2, texts
    assert texts[0].startswith(f"wind_pipeline: `wind-etl 2024-01-05 --api-url {api}` failed: ")
    assert "no source data for 2024-01-05" in texts[0]
    assert texts[1].startswith(f"wind_pipeline: `wind-etl sync 2024-01-01 --api-url {api} ")
    assert "secret" not in texts[1]


def test_a_run_of_raw_readings_alone_posts_its_warning_days_itself(
    seed_source, serve_api, source_url, target_url, tmp_path, monkeypatch
):
    from wind_pipeline_tests.test_sync_cli import source_sql

    seed_source(days=2)
    source_sql(source_url, "DELETE FROM data WHERE timestamp < '2024-01-01 00:10+00'")
    with receiver() as hook:
        monkeypatch.setenv(WEBHOOK_VARIABLE, hook.url)
        result = dg.materialize(
            [raw_readings],
            resources=resources(serve_api(), target_url, tmp_path / "storage"),
            instance=dg.DagsterInstance.ephemeral(),
            tags={
                "dagster/asset_partition_range_start": "2024-01-01",
                "dagster/asset_partition_range_end": "2024-01-02",
            },
        )
    assert result.success
    assert [request.json()["text"] for request in hook.requests] == [
        f"wind_pipeline: checks warn for 2024-01-01 (run {result.run_id}): readings_complete 10"
    ]


def test_a_command_failure_alert_carries_no_password_of_a_url(monkeypatch):
    from wind_pipeline.etl.alerts import alert_command_failure

    with receiver() as hook:
        monkeypatch.setenv(WEBHOOK_VARIABLE, hook.url)
        argv = ["sync", "--api-url=http://scada:s3cret@127.0.0.1:9/", "--api-key", "k3y"]
        assert alert_command_failure(argv, "connector API unreachable at http://scada:s3cret@x")
    (request,) = hook.requests
    text = request.json()["text"]
    assert "s3cret" not in text and "k3y" not in text
    assert "http://scada:***@127.0.0.1:9/" in text
