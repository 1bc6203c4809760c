"""Settings: the prefixed environment variables only, and bare postgresql:// URLs switched."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connector_api.settings import DEFAULT_DATABASE_URL, Settings


def test_reads_only_the_prefixed_variables(monkeypatch):
    monkeypatch.delenv("SOURCE_DATABASE_URL", raising=False)
    monkeypatch.delenv("CONNECTOR_API_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone-else/db")
    monkeypatch.setenv("API_KEY", "not-ours")
    assert Settings().database_url == DEFAULT_DATABASE_URL
    assert Settings().api_key is None

    monkeypatch.setenv("SOURCE_DATABASE_URL", "postgresql://reader@db.internal:5432/source")
    monkeypatch.setenv("CONNECTOR_API_KEY", "k")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg2://reader@db.internal:5432/source"
    assert settings.api_key == "k"


def test_field_names_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("CONNECTOR_API_KEY", "from-env")
    settings = Settings(database_url="postgresql://a@localhost/b", api_key=None)
    assert (settings.database_url, settings.api_key) == (
        "postgresql+psycopg2://a@localhost/b",
        None,
    )
    assert Settings(api_key="").api_key is None  # blank means no key, not an empty key


def test_a_non_postgresql_url_is_refused():
    with pytest.raises(ValidationError, match="not a PostgreSQL URL"):
        Settings(database_url="mysql://x/y")


def test_stall_timeout_and_stream_limit_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CONNECTOR_API_STALL_TIMEOUT", "7.5")
    monkeypatch.setenv("CONNECTOR_API_MAX_STREAMS", "3")
    settings = Settings()
    assert (settings.stall_timeout_seconds, settings.max_streams) == (7.5, 3)
    assert Settings(stall_timeout_seconds=2).stall_timeout_seconds == 2.0  # field name wins
    monkeypatch.delenv("CONNECTOR_API_STALL_TIMEOUT")
    monkeypatch.delenv("CONNECTOR_API_MAX_STREAMS")
    assert (Settings().stall_timeout_seconds, Settings().max_streams) == (30.0, 20)


@pytest.mark.parametrize(("field", "value"), [("stall_timeout_seconds", 0), ("max_streams", 0)])
def test_a_limit_that_would_stop_every_stream_is_refused(field, value):
    with pytest.raises(ValidationError, match="greater than"):
        Settings(**{field: value})
