"""Baseline: the schema of the previous release (one turbine, signals named ``wind_speed_mean``).

A target created by that release (tables present, no ``alembic_version``) is stamped at this
revision and then upgraded; an empty target runs it first. Constraint names are PostgreSQL's
defaults, which is what the previous release's ``create_all`` got.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("variable", sa.Text, nullable=False),
        sa.Column("statistic", sa.Text, nullable=False),
        sa.Column("unit", sa.Text),
        sa.Column("description", sa.Text),
        sa.PrimaryKeyConstraint("id", name="signal_pkey"),
        sa.UniqueConstraint("name", name="signal_name_key"),
        sa.UniqueConstraint("variable", "statistic", name="signal_variable_statistic_key"),
    )
    op.create_table(
        "data",
        sa.Column("signal_id", sa.Integer, nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("signal_id", "timestamp", name="data_pkey"),
        sa.ForeignKeyConstraint(["signal_id"], ["signal.id"], name="data_signal_id_fkey"),
    )


def downgrade() -> None:
    op.drop_table("data")
    op.drop_table("signal")
