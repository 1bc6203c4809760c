"""The target schema: a narrow ``data`` table keyed by signal, and the ``signal`` catalogue."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wind_pipeline.etl.db import database_errors
from wind_pipeline.etl.signals import STATISTICS

__all__ = ["STATISTICS", "Base", "Data", "Signal", "create_schema"]


class Base(DeclarativeBase):
    pass


class Signal(Base):
    """One statistic of one variable, e.g. ``wind_speed_mean``."""

    __tablename__ = "signal"
    __table_args__ = (sa.UniqueConstraint("variable", "statistic"),)

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    variable: Mapped[str] = mapped_column(sa.Text)
    statistic: Mapped[str] = mapped_column(sa.Text)
    unit: Mapped[str | None] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)


class Data(Base):
    """One value of one signal for the 10-minute window starting at ``timestamp``."""

    __tablename__ = "data"

    # signal_id first: deleting or reading one day of a few signals is an index range scan.
    signal_id: Mapped[int] = mapped_column(sa.ForeignKey("signal.id"), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    value: Mapped[float] = mapped_column(sa.Double, nullable=False)


def create_schema(engine: sa.Engine) -> None:
    """Create whatever part of the schema is missing; never drops or rewrites existing data."""
    with database_errors("creating the schema"):
        Base.metadata.create_all(engine, checkfirst=True)
