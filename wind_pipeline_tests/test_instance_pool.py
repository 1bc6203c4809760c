"""The instance of the repo's dagster.yaml keeps its PostgreSQL connections and reuses them."""

import shutil

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa

from wind_pipeline_tests.dagster_support import REPO

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")


@dg.asset(partitions_def=DAYS, check_specs=[dg.AssetCheckSpec("fine", asset="day")])
def day(context: dg.AssetExecutionContext):
    yield dg.Output(context.partition_key)
    yield dg.AssetCheckResult(check_name="fine", passed=True)


def storages(instance: dg.DagsterInstance) -> tuple:
    return instance.run_storage, instance.event_log_storage, instance.schedule_storage


def connections_opened(instance: dg.DagsterInstance) -> list[int]:
    """A counter of the connections the instance's three storages open from now on."""
    opened = [0]

    def count(*_):
        opened[0] += 1

    for part in storages(instance):
        sa.event.listen(part._engine, "connect", count)
    return opened


def run_three_days(instance: dg.DagsterInstance) -> None:
    for key in ("2024-01-01", "2024-01-02", "2024-01-03"):
        result = dg.materialize([day], instance=instance, partition_key=key)
        assert result.success


PLAIN_STORAGE = """
storage:
  postgres:
    postgres_url: {env: DAGSTER_POSTGRES_URL}
telemetry:
  enabled: false
"""


@pytest.fixture
def home(tmp_path, make_database, monkeypatch):
    """A fresh DAGSTER_HOME folder and Dagster database; write its dagster.yaml yourself."""
    url = make_database()
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
    home = tmp_path / "home"
    home.mkdir()
    return home, url


@pytest.fixture
def instance(home):
    """The instance of the repo's dagster.yaml."""
    folder, url = home
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    made = dg.DagsterInstance.from_config(str(folder))
    made.url = url
    yield made
    made.dispose()


def test_the_repo_instance_opens_one_connection_per_storage_not_one_per_call(instance, tmp_path):
    pools = [type(part._engine.pool) for part in storages(instance)]
    assert pools == [sa.pool.QueuePool] * 3
    opened = connections_opened(instance)
    run_three_days(instance)
    assert opened[0] <= 3
    materialized = instance.get_materialized_partitions(day.key)
    assert materialized == {"2024-01-01", "2024-01-02", "2024-01-03"}

    plain_home = tmp_path / "plain"
    plain_home.mkdir()
    (plain_home / "dagster.yaml").write_text(PLAIN_STORAGE)
    plain = dg.DagsterInstance.from_config(str(plain_home))  # same database, as shipped
    try:
        assert type(plain.run_storage._engine.pool) is sa.pool.NullPool
        opened_plain = connections_opened(plain)
        run_three_days(plain)
    finally:
        plain.dispose()
    assert opened_plain[0] > 10 * 3  # dozens per run (136 when written)


def test_pooled_connections_killed_by_the_server_are_replaced_not_failed(instance):
    run_three_days(instance)
    conn = psycopg2.connect(instance.url.replace("postgresql+psycopg2://", "postgresql://", 1))
    conn.autocommit = True
    with conn.cursor() as cur:  # what a restart of Dagster's PostgreSQL does to the pool
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cur.fetchone()[0] >= 1
    conn.close()
    run_three_days(instance)
    assert len(instance.get_runs()) == 6
