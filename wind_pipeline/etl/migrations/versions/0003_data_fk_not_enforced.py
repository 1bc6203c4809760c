"""``data.signal_id → signal.id`` declared but not enforced (PostgreSQL 18), for load throughput.

Measured (benchmarks/bench_load.py, 345k rows of 50 turbines, 2 cores): checking the key costs
7-9 µs per row, which caps even a bare COPY at about 90-110k rows/s, far below the 250k rows/s
target; without the check a bare COPY does about 250k rows/s and ``load`` about 200k. The load
only writes ids it has just read from or inserted into ``signal`` in the same transaction, and
nothing deletes a signal, so the check can never fail for our writes; the constraint stays in the
catalogue (documentation, ORMs, BI tools' joins). A server older than 18 has no NOT ENFORCED and
keeps the enforced key (this revision does nothing there).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _has_not_enforced() -> bool:
    return op.get_bind().dialect.server_version_info >= (18,)


def upgrade() -> None:
    if _has_not_enforced():
        op.execute("ALTER TABLE data ALTER CONSTRAINT data_signal_id_fkey NOT ENFORCED")


def downgrade() -> None:
    if _has_not_enforced():
        op.execute("ALTER TABLE data ALTER CONSTRAINT data_signal_id_fkey ENFORCED")
