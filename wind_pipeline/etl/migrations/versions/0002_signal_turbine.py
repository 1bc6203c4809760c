"""A fleet: ``signal.turbine``, unique per (turbine, variable, statistic), names ``WTG01.…``.

The previous release knew one turbine, so its signals become WTG01's: ids kept (every ``data``
row stays valid as it is), names prefixed, ``turbine`` filled before it becomes NOT NULL.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FIRST_TURBINE = "WTG01"


def upgrade() -> None:
    op.add_column("signal", sa.Column("turbine", sa.Text, nullable=True))
    op.execute(
        sa.text("UPDATE signal SET turbine = :t, name = :t || '.' || name").bindparams(
            t=FIRST_TURBINE
        )
    )
    op.alter_column("signal", "turbine", nullable=False)
    op.drop_constraint("signal_variable_statistic_key", "signal", type_="unique")
    op.create_unique_constraint(
        "signal_turbine_variable_statistic_key", "signal", ["turbine", "variable", "statistic"]
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM data USING signal WHERE data.signal_id = signal.id "
            "AND signal.turbine <> :t"
        ).bindparams(t=FIRST_TURBINE)
    )
    op.execute(sa.text("DELETE FROM signal WHERE turbine <> :t").bindparams(t=FIRST_TURBINE))
    op.drop_constraint("signal_turbine_variable_statistic_key", "signal", type_="unique")
    op.create_unique_constraint(
        "signal_variable_statistic_key", "signal", ["variable", "statistic"]
    )
    op.execute(sa.text("UPDATE signal SET name = substr(name, strpos(name, '.') + 1)"))
    op.drop_column("signal", "turbine")
