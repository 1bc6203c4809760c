"""The API's configuration: one class, read from the environment once."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@localhost:5432/source"


def psycopg2_url(url: str) -> str:
    """Name the psycopg2 driver: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url!r}; expected postgresql+psycopg2://…")
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


class Settings(BaseSettings):
    """Where the source database is, the optional API key, and how long a client may stall."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias="SOURCE_DATABASE_URL",
        description="SQLAlchemy URL of the source database (bare postgresql:// is accepted).",
    )
    api_key: str | None = Field(
        None,
        validation_alias="CONNECTOR_API_KEY",
        description="When set, every route but /health and the docs needs this X-API-Key.",
    )
    stall_timeout_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias="CONNECTOR_API_STALL_TIMEOUT",
        description="A streamed response whose client takes none of its next 256 KiB for this"
        " long is abandoned and its database connection closed; also how long a large"
        " download waits for a stream slot.",
    )
    max_streams: int = Field(
        20,
        ge=1,
        validation_alias="CONNECTOR_API_MAX_STREAMS",
        description="Large ranges streamed at once, each on a database connection of its own"
        " (small reads and /health never wait for these).",
    )

    def __init__(self, **values: object) -> None:
        # Constructible by field name, while the environment is read only under the prefixed
        # names: a generic DATABASE_URL or API_KEY must not be picked up.
        for field, env in (
            ("database_url", "SOURCE_DATABASE_URL"),
            ("api_key", "CONNECTOR_API_KEY"),
            ("stall_timeout_seconds", "CONNECTOR_API_STALL_TIMEOUT"),
            ("max_streams", "CONNECTOR_API_MAX_STREAMS"),
        ):
            if field in values:
                values[env] = values.pop(field)
        super().__init__(**values)

    @field_validator("database_url")
    @classmethod
    def _named_driver(cls, url: str) -> str:
        return psycopg2_url(url)

    @field_validator("api_key")
    @classmethod
    def _blank_means_none(cls, key: str | None) -> str | None:
        return key or None
