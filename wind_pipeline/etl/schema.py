"""The target schema: a narrow ``data`` table keyed by signal, the ``signal`` catalogue, and
``loaded_day``, the record of what each (day, turbine) holds and from which source version.

The models describe the schema at Alembic's head; the migrations in ``etl/migrations`` are how a
database gets there (``upgrade_schema``), from empty or from the previous release.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wind_pipeline.etl.db import HEAD_REVISION, database_errors

__all__ = [
    "HEAD_REVISION",
    "Base",
    "Data",
    "LoadedDay",
    "Signal",
    "upgrade_schema",
]

BASELINE_REVISION = "0001"  # the previous release's schema
# Key of the transaction-scoped advisory lock that serialises concurrent upgrades ("WSCH").
_UPGRADE_LOCK = 0x57534348


class Base(DeclarativeBase):
    pass


class Signal(Base):
    """One statistic of one variable of one turbine, e.g. ``WTG01.wind_speed_mean``."""

    __tablename__ = "signal"
    __table_args__ = (
        sa.UniqueConstraint(
            "turbine", "variable", "statistic", name="signal_turbine_variable_statistic_key"
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    turbine: Mapped[str] = mapped_column(sa.Text)
    variable: Mapped[str] = mapped_column(sa.Text)
    statistic: Mapped[str] = mapped_column(sa.Text)
    unit: Mapped[str | None] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)


class Data(Base):
    """One value of one signal for the 10-minute window starting at ``timestamp``.

    Partitioned by month (``etl/months.py``): the partitions are made by the migrations, by
    ``upgrade_schema`` and by the load, never by ``create_all``.
    """

    __tablename__ = "data"
    __table_args__ = ({"postgresql_partition_by": 'RANGE ("timestamp")'},)

    # signal_id first: deleting or reading one day of a few signals is an index range scan.
    signal_id: Mapped[int] = mapped_column(sa.ForeignKey("signal.id"), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    value: Mapped[float] = mapped_column(sa.Double, nullable=False)


class LoadedDay(Base):
    """What the target holds of one (UTC day, turbine): written in the day's load transaction.

    ``source_version`` is the version ``GET /days`` gave before the extract (NULL: unknown, or the
    source had no row); ``rules`` the digest of the quality rules the transform used
    (``etl/rules.py``). ``wind-etl sync`` and the ``source_changes`` sensor compare it with the
    source to find the days to reload.
    """

    __tablename__ = "loaded_day"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    turbine: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    source_version: Mapped[str | None] = mapped_column(sa.Text)
    readings: Mapped[int] = mapped_column(sa.Integer)
    variables: Mapped[list[str]] = mapped_column(sa.ARRAY(sa.Text))
    quality_control: Mapped[bool] = mapped_column(sa.Boolean)
    rules: Mapped[str] = mapped_column(sa.Text)
    loaded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    run_id: Mapped[str | None] = mapped_column(sa.Text)


def upgrade_schema(engine: sa.Engine) -> str:
    """Bring the target to the head revision; idempotent, safe to run from several processes.

    An empty database is created at head; one created by the previous release (tables, no
    ``alembic_version``) is stamped at the baseline and upgraded, keeping every row and signal
    id. Either way this month's and next month's partitions of ``data`` exist after. Returns
    what was done: ``"current"``, ``"created"`` or ``"upgraded"``.
    """
    with database_errors("upgrading the schema"), engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK})
        found = conn.execute(
            sa.text("SELECT to_regclass('alembic_version') IS NOT NULL, to_regclass('signal')")
        ).one()
        version = None
        if found[0]:
            version = conn.execute(sa.text("SELECT max(version_num) FROM alembic_version")).scalar()
        if version == HEAD_REVISION:
            done = "current"
        else:
            previous_release = version is None and found[1] is not None
            _migrate(conn, stamp_first=BASELINE_REVISION if previous_release else None)
            done = "upgraded" if version or previous_release else "created"
        _months_ahead(conn)
        return done


def _months_ahead(conn: sa.Connection) -> None:
    """This month's and next month's partitions, so that a load at a month's turn finds its
    month made (the load makes any other month it writes itself)."""
    from wind_pipeline.etl import months

    this_month = months.month_of(datetime.now(UTC).date())
    with conn.connection.driver_connection.cursor() as cur:
        months.create_months(cur, [this_month, months.next_month(this_month)])


def _migrate(conn: sa.Connection, *, stamp_first: str | None) -> None:
    """Run Alembic's migrations to head on ``conn``, inside its transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "wind_pipeline.etl:migrations")
    config.attributes["connection"] = conn
    if stamp_first is not None:
        command.stamp(config, stamp_first)
    command.upgrade(config, "head")
