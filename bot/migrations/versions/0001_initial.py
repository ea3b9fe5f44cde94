"""Initial state schema: kv, dedupe keys, intake outbox, urgent alerts, scheduled runs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kv",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "dedupe_keys",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("thread_key", sa.String(100), nullable=True, unique=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("request_type", sa.String(100), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("requester_id", sa.String(50), nullable=False),
        sa.Column("channel_id", sa.String(50), nullable=True),
        sa.Column("thread_ts", sa.String(50), nullable=True),
        sa.Column("permalink", sa.Text, nullable=True),
        sa.Column("issue_number", sa.Integer, nullable=True),
        sa.Column("issue_url", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime, nullable=True),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("notified_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "urgent_alerts",
        sa.Column("repo", sa.String(200), primary_key=True),
        sa.Column("issue_number", sa.Integer, primary_key=True),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("ts", sa.String(50), nullable=True),
        sa.Column("state_hash", sa.String(64), nullable=True),
        sa.Column("state", sa.JSON, nullable=True),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "scheduled_runs",
        sa.Column("job", sa.String(50), primary_key=True),
        sa.Column("period", sa.String(50), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(50), nullable=True),
        sa.Column("ts", sa.String(50), nullable=True),
        sa.Column("permalink", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("scheduled_runs", "urgent_alerts", "requests", "dedupe_keys", "kv"):
        op.drop_table(table)
