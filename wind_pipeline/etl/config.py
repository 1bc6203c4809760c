"""Defaults shared by ``wind-etl`` and the Dagster resources, and the environment they read."""

from __future__ import annotations

import os

# What the pipeline moves when nobody says otherwise (SPEC §4.2).
DEFAULT_VARIABLES: tuple[str, ...] = ("wind_speed", "power")

API_URL_ENV = "CONNECTOR_API_URL"
API_KEY_ENV = "CONNECTOR_API_KEY"
DATABASE_URL_ENV = "TARGET_DATABASE_URL"

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@localhost:5432/target"


def api_url() -> str:
    """The connector API's base URL from ``CONNECTOR_API_URL``, or the local default."""
    return os.environ.get(API_URL_ENV) or DEFAULT_API_URL


def api_key() -> str | None:
    """The API key from ``CONNECTOR_API_KEY``; unset or empty means no key."""
    return os.environ.get(API_KEY_ENV) or None


def database_url() -> str:
    """The target database URL from ``TARGET_DATABASE_URL``, or the local default."""
    return os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
