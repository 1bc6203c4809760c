"""The embedded PostgreSQL works here (as root too) and hands out independent databases."""

import sqlalchemy as sa

from wind_pipeline import local_postgres
from wind_pipeline_tests.databases import drop_database


def test_databases_are_real_and_separate(make_database):
    first, second = make_database(), make_database()
    with sa.create_engine(first).begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x int)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
        assert conn.execute(sa.text("SELECT sum(x) FROM t")).scalar() == 3
    with sa.create_engine(second).connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('t')")).scalar() is None


def test_create_database_is_idempotent(pg_server):
    url = local_postgres.create_database(pg_server, "idempotent_db")
    assert local_postgres.create_database(pg_server, "idempotent_db") == url
    assert url.startswith("postgresql+psycopg2://")  # SQLAlchemy 2.1 would pick psycopg 3
    drop_database(pg_server, "idempotent_db")
