"""Metric subscriptions and alerts: the items and each alert's per-period result.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "metric_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("period_text", sa.String(60), nullable=True),
        sa.Column("account", sa.String(100), nullable=True),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("creator", sa.String(50), nullable=False),
        sa.Column("schedule", sa.JSON, nullable=True),
        sa.Column("rule", sa.JSON, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("snoozed_until", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index(
        "ix_metric_subscriptions_channel", "metric_subscriptions", ["channel"], unique=False
    )
    op.create_index(
        "ix_metric_subscriptions_creator", "metric_subscriptions", ["creator"], unique=False
    )
    op.create_table(
        "metric_alert_checks",
        sa.Column("alert_id", sa.Integer, primary_key=True),
        sa.Column("period", sa.String(50), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_alert_checks")
    op.drop_index("ix_metric_subscriptions_creator", table_name="metric_subscriptions")
    op.drop_index("ix_metric_subscriptions_channel", table_name="metric_subscriptions")
    op.drop_table("metric_subscriptions")
