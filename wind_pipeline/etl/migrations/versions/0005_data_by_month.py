"""``data`` partitioned by month on ``timestamp`` (README, "Beyond one machine"), every row kept.

In place, in the upgrade's one transaction: the plain table is renamed aside, the partitioned
``data`` is created without its keys, with a DEFAULT partition and one partition per month from
the data's first month to the month after today, the rows are copied (``INSERT … SELECT``), the
plain table is dropped, and only then are the primary key and the foreign key added, per
partition, which builds each index once instead of maintaining it row by row. The foreign key
stays NOT ENFORCED on PostgreSQL 18 (migration 0003), enforced before. While it runs, the target
needs about the table's size again in free disk (both copies exist until the commit).

Revision ID: 0005
Revises: 0004
"""

from datetime import UTC, datetime

from alembic import op

from wind_pipeline.etl import months

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FOREIGN_KEY = (
    "ALTER TABLE data ADD CONSTRAINT data_signal_id_fkey "
    "FOREIGN KEY (signal_id) REFERENCES signal (id)"
)
_PRIMARY_KEY = "ALTER TABLE data ADD CONSTRAINT data_pkey PRIMARY KEY (signal_id, timestamp)"


def _not_enforced() -> str:
    return " NOT ENFORCED" if op.get_bind().dialect.server_version_info >= (18,) else ""


def _rename_aside() -> None:
    op.execute("ALTER TABLE data RENAME TO data_plain")
    op.execute("ALTER TABLE data_plain RENAME CONSTRAINT data_pkey TO data_plain_pkey")
    op.execute("ALTER TABLE data_plain RENAME CONSTRAINT data_signal_id_fkey TO data_plain_fkey")


def _create_data(*, partitioned: bool) -> None:
    op.execute(
        "CREATE TABLE data (signal_id integer NOT NULL, "
        '"timestamp" timestamp with time zone NOT NULL, value double precision NOT NULL)'
        + (' PARTITION BY RANGE ("timestamp")' if partitioned else "")
    )


def _months_to_create(cur) -> list[months.Month]:
    """The data's first month to the month after the later of its last month and today's."""
    cur.execute('SELECT min("timestamp"), max("timestamp") FROM data_plain')
    first, last = (t.astimezone(UTC).date() if t else None for t in cur.fetchone())
    today = datetime.now(UTC).date()
    last_month = months.month_of(max(last, today) if last else today)
    return list(
        months.months_between(months.month_of(first or today), months.next_month(last_month))
    )


def upgrade() -> None:
    _rename_aside()
    _create_data(partitioned=True)
    op.execute(f"CREATE TABLE {months.DEFAULT_PARTITION} PARTITION OF data DEFAULT")
    cur = op.get_bind().connection.driver_connection.cursor()
    months.create_months(cur, _months_to_create(cur))
    op.execute("INSERT INTO data SELECT signal_id, timestamp, value FROM data_plain")
    op.execute("DROP TABLE data_plain")
    op.execute(_PRIMARY_KEY)
    op.execute(_FOREIGN_KEY + _not_enforced())


def downgrade() -> None:
    op.execute("ALTER TABLE data RENAME TO data_partitioned")
    op.execute("ALTER TABLE data_partitioned RENAME CONSTRAINT data_pkey TO data_partitioned_pkey")
    _create_data(partitioned=False)
    op.execute("INSERT INTO data SELECT signal_id, timestamp, value FROM data_partitioned")
    op.execute("DROP TABLE data_partitioned")  # its partitions go with it
    op.execute(_PRIMARY_KEY)
    op.execute(_FOREIGN_KEY + _not_enforced())
