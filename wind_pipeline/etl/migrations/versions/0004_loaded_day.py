"""``loaded_day``: what the target holds of each (day, turbine), and from which source version.

Created empty: a day loaded by an earlier release has no record, so the first ``wind-etl sync``
(or the ``source_changes`` sensor) finds every source day of its window ``new`` and reloads it
once, writing exact records. Seeding records from ``data`` instead would scan every row of the
target under the upgrade lock (31.5 M rows for 50 turbines and a year, holding every run's start)
and could only guess the version, the readings and the rules; one reload of the lookback window
costs what a month of the daily schedule costs and leaves nothing guessed.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loaded_day",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("turbine", sa.Text, nullable=False),
        sa.Column("source_version", sa.Text, nullable=True),
        sa.Column("readings", sa.Integer, nullable=False),
        sa.Column("variables", sa.ARRAY(sa.Text), nullable=False),
        sa.Column("quality_control", sa.Boolean, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("day", "turbine", name="loaded_day_pkey"),
    )


def downgrade() -> None:
    op.drop_table("loaded_day")
