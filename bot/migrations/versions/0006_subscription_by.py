"""Metric subscriptions: `by DIMENSION` as its own column, and ids never reused.

`by` was folded into the stored period text (which then never parsed). SQLite reuses the
highest rowid after a delete unless the table is AUTOINCREMENT, so a new item could
become `sub-N` again and inherit the deleted one's runs; the table is rebuilt with
AUTOINCREMENT (batch mode; PostgreSQL's sequence never reuses ids).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "metric_subscriptions",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.add_column(sa.Column("by", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metric_subscriptions") as batch:
        batch.drop_column("by")
